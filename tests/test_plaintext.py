"""Wrapping the text part: CJK counts two columns, URLs never break."""

from __future__ import annotations

import unicodedata

from mailer.compose.plaintext import html_text, text_width, wrap


def columns(text: str) -> int:
    """Screen columns, measured independently of the code under test."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def test_cjk_characters_count_two_columns():
    assert text_width("abc") == 3
    assert text_width("中文") == 4
    assert text_width("ａ") == 2  # full-width Latin


def test_chinese_text_wraps_between_characters_within_the_width():
    text = "多数据中心联合训练是当前国内智算行业热门话题三大运营商已开启研究和试点" * 2
    lines = wrap(text, 20).splitlines()
    assert all(columns(line) <= 20 for line in lines)
    assert "".join(lines) == text
    assert len(lines) > 3


def test_latin_words_are_not_split():
    text = "the quick brown fox jumps over the lazy dog " * 4
    for line in wrap(text, 30).splitlines():
        assert columns(line) <= 30
        assert not line.startswith(" ")
    assert wrap(text, 30).split() == text.split()


def test_a_url_longer_than_the_width_stays_on_one_line():
    url = "https://mp.weixin.qq.com/s/" + "x" * 80
    lines = wrap(f"见 {url} 原文", 40).splitlines()
    assert url in lines
    assert "".join(wrap(f"中文中文中文{url}", 20).split()).count(url) == 1


def test_closing_punctuation_never_starts_a_line():
    text = "甲乙丙丁戊己，庚辛壬癸。子丑寅卯辰巳，午未申酉。" * 3
    for width in range(6, 30):
        for line in wrap(text, width).splitlines()[1:]:
            assert line[0] not in "，。", (width, line)


def test_list_items_and_quotes_hang_under_their_marker():
    text = "- " + "word " * 20 + "\n> " + "quoted " * 12
    lines = wrap(text, 30).splitlines()
    list_lines = [line for line in lines if not line.startswith(">")]
    assert list_lines[0].startswith("- ")
    assert all(line.startswith("  ") for line in list_lines[1:])
    quote_lines = [line for line in lines if line.startswith(">")]
    assert len(quote_lines) > 1 and all(line.startswith("> ") for line in quote_lines)


def test_indent_prefixes_every_line_and_counts_toward_the_width():
    lines = wrap("词语" * 30, 24, indent="   ").splitlines()
    assert all(line.startswith("   ") and columns(line) <= 24 for line in lines)


def test_code_lines_are_left_as_written():
    code = "    for i in range(10): print(i, i * i, 'a very long line that must not be wrapped at all')"
    assert wrap(code, 30) == code


def test_raw_html_keeps_its_text_links_and_images():
    text = html_text('<div><p>Hello <a href="https://e.example/x">there</a></p>'
                     '<img src="https://e.example/i.png" alt="Chart"><ul><li>one</li><li>two</li></ul>'
                     '<style>p{color:red}</style></div>')
    assert text.splitlines() == [
        "Hello there <https://e.example/x>", "[Chart] <https://e.example/i.png>", "- one", "- two"]
