"""Unsubscribe tokens: only exactly what was issued verifies."""

from __future__ import annotations

import base64
import os
import stat

import pytest

from mailer.errors import MailerError
from mailer.errors import InvalidToken
from mailer.tokens import TOKEN_LENGTH, issue_token, load_secret, verify_token

SECRET = b"s" * 32


def test_a_token_round_trips_its_claims():
    token = issue_token(SECRET, 123456789, 42)
    assert len(token) == TOKEN_LENGTH
    claims = verify_token(SECRET, token)
    assert (claims.subscriber_id, claims.send_id) == (123456789, 42)


def test_another_secret_does_not_verify():
    with pytest.raises(InvalidToken):
        verify_token(b"t" * 32, issue_token(SECRET, 1, 1))


def test_every_single_character_change_is_refused():
    token = issue_token(SECRET, 7, 3)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for i in range(len(token)):
        for char in alphabet:
            if char != token[i]:
                with pytest.raises(InvalidToken):
                    verify_token(SECRET, token[:i] + char + token[i + 1:])


def test_lenient_forms_of_a_valid_token_are_refused():
    token = issue_token(SECRET, 7, 3)
    standard = base64.b64encode(base64.urlsafe_b64decode(token + "=")).decode()
    for mangled in (token + "=", token + "A", token[:-1], " " + token, token + "\n",
                    token.replace("-", "+").replace("_", "/") if ("-" in token or "_" in token)
                    else token + "==", standard, token[:20] + "." + token[20:], "", "é" * 39,
                    token[:-1] + "\u00e9"):
        with pytest.raises(InvalidToken):
            verify_token(SECRET, mangled)


def test_spare_bits_must_be_zero():
    token = issue_token(SECRET, 7, 3)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(token[-1])
    # 29 bytes fill 232 bits; the last character's 2 low bits are spare.
    for spare in (1, 2, 3):
        variant = token[:-1] + alphabet[last ^ spare]
        assert base64.urlsafe_b64decode(variant + "=") == base64.urlsafe_b64decode(token + "=")
        with pytest.raises(InvalidToken):
            verify_token(SECRET, variant)


def test_secret_is_made_once_with_mode_0600(tmp_path, monkeypatch):
    monkeypatch.delenv("MAILER_SECRET", raising=False)
    first = load_secret(tmp_path)
    assert stat.S_IMODE(os.stat(tmp_path / "secret.key").st_mode) == 0o600
    assert load_secret(tmp_path) == first
    assert len(first) >= 32


def test_secret_from_the_environment_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("MAILER_SECRET", "x" * 40)
    assert load_secret(tmp_path) == b"x" * 40
    assert not (tmp_path / "secret.key").exists()
    monkeypatch.setenv("MAILER_SECRET", "short")
    with pytest.raises(MailerError, match="MAILER_SECRET is too short") as caught:
        load_secret(tmp_path)
    assert "short" not in str(caught.value).replace("too short", "")
