"""Unsubscribe tokens: only exactly what was issued verifies."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import stat

import pytest

from mailer.errors import MailerError
from mailer.errors import InvalidToken
from mailer.tokens import TOKEN_LENGTH, Signer, issue_test_token, load_secret

SECRET = b"s" * 32
STORE_ID = "5f0c" * 8
LIST_ID = "cloud-weekly.newsletter.example.com"
SIGNER = Signer(SECRET, STORE_ID, LIST_ID)
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def v1_token(secret: bytes, subscriber_id: int, send_id: int) -> str:
    """A link as mailer wrote them before stores had an id (version 1), byte for byte."""
    body = bytes([1]) + subscriber_id.to_bytes(8, "big") + send_id.to_bytes(4, "big")
    tag = hmac.new(secret, b"mailer-unsubscribe\x00" + body, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(body + tag).rstrip(b"=").decode("ascii")


def test_a_token_round_trips_its_claims_in_32_characters():
    token = SIGNER.issue(123456789, 42)
    assert len(token) == TOKEN_LENGTH == 32
    claims = SIGNER.verify(token)
    assert (claims.subscriber_id, claims.send_id) == (123456789, 42)


def test_another_secret_store_or_list_does_not_verify():
    token = SIGNER.issue(1, 1)
    for other in (Signer(b"t" * 32, STORE_ID, LIST_ID), Signer(SECRET, "a1" * 16, LIST_ID),
                  Signer(SECRET, STORE_ID, "other.newsletter.example.com"),
                  Signer(SECRET, STORE_ID, LIST_ID + "\x00")):
        with pytest.raises(InvalidToken, match="does not verify"):
            other.verify(token)


def test_a_test_token_names_nobody_and_verifies_in_any_store_of_its_list():
    token = issue_test_token(SECRET, LIST_ID)
    assert Signer(SECRET, "a1" * 16, LIST_ID).verify(token).subscriber_id == 0
    with pytest.raises(InvalidToken):
        Signer(SECRET, STORE_ID, "other.newsletter.example.com").verify(token)


def test_every_single_character_change_is_refused():
    token = SIGNER.issue(7, 3)
    for i in range(len(token)):
        for char in ALPHABET:
            if char != token[i]:
                with pytest.raises(InvalidToken):
                    SIGNER.verify(token[:i] + char + token[i + 1:])


def test_lenient_forms_of_a_valid_token_are_refused():
    token = SIGNER.issue(7, 3)
    # The standard alphabet's spelling, where the token has a character it spells otherwise.
    standard = base64.b64encode(base64.urlsafe_b64decode(token)).decode()
    for mangled in (token + "=", token + "A", token[:-1], " " + token, token + "\n", token[:-1] + "\n",
                    token.replace("-", "+").replace("_", "/") if ("-" in token or "_" in token)
                    else token + "==", *({standard} - {token}), token[:20] + "." + token[20:], "", "é" * 32,
                    token[:-1] + "\u00e9", token + "A" * 7, None, 7):
        with pytest.raises(InvalidToken):
            SIGNER.verify(mangled)


def test_a_version_1_token_verifies_only_in_a_store_that_issued_version_1_tokens_for_its_send():
    token = v1_token(SECRET, 7, 3)
    assert len(token) == 39
    claims = Signer(SECRET, STORE_ID, LIST_ID, v1_through_send=3).verify(token)
    assert (claims.subscriber_id, claims.send_id) == (7, 3)
    for store in (SIGNER, Signer(SECRET, STORE_ID, LIST_ID, v1_through_send=2)):
        with pytest.raises(InvalidToken, match="earlier store"):
            store.verify(token)
    with pytest.raises(InvalidToken, match="does not verify"):
        Signer(b"t" * 32, STORE_ID, LIST_ID, v1_through_send=3).verify(token)


def test_the_spare_bits_of_a_version_1_token_must_be_zero():
    token = v1_token(SECRET, 7, 3)
    migrated = Signer(SECRET, STORE_ID, LIST_ID, v1_through_send=3)
    last = ALPHABET.index(token[-1])
    # 29 bytes fill 232 bits; the last character's 2 low bits are spare.
    for spare in (1, 2, 3):
        variant = token[:-1] + ALPHABET[last ^ spare]
        assert base64.urlsafe_b64decode(variant + "=") == base64.urlsafe_b64decode(token + "=")
        with pytest.raises(InvalidToken):
            migrated.verify(variant)


def test_a_version_2_body_under_a_version_1_length_is_refused():
    # A tag made the old way over a body that says version 2: neither rule may take it.
    body = bytes([2]) + (7).to_bytes(8, "big") + (3).to_bytes(4, "big")
    tag = hmac.new(SECRET, b"mailer-unsubscribe\x00" + body, hashlib.sha256).digest()[:16]
    forged = base64.urlsafe_b64encode(body + tag).rstrip(b"=").decode("ascii")
    with pytest.raises(InvalidToken):
        Signer(SECRET, STORE_ID, LIST_ID, v1_through_send=3).verify(forged)


def test_ids_that_do_not_fit_are_refused_rather_than_cut():
    with pytest.raises(MailerError, match="does not fit in an unsubscribe token"):
        SIGNER.issue(1 << 32, 1)
    with pytest.raises(MailerError, match="does not fit"):
        SIGNER.issue(1, 1 << 24)


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
