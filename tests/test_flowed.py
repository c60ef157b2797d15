"""format=flowed decoding (RFC 3676): one test per rule, then the Content-Type parameters."""

from __future__ import annotations

import pytest

from assistant.mail.flowed import decode_flowed, flowed_params


def test_soft_breaks_join_and_keep_their_space_with_delsp_no():
    text = "I can't \nremember which \none it was.\nNew line."
    assert decode_flowed(text) == "I can't remember which one it was.\nNew line."


def test_delsp_yes_removes_the_space_of_each_soft_break():
    # DelSp=yes lets a sender break anywhere (here inside words); the added space goes on reception.
    text = "Langes Wort: Donaudampf \nschifffahrt.\nEin  \nSatz."
    assert decode_flowed(text, delsp=True) == "Langes Wort: Donaudampfschifffahrt.\nEin Satz."


def test_hard_line_ends_the_paragraph():
    assert decode_flowed("one \ntwo\nthree \nfour") == "one two\nthree four"


def test_space_stuffing_is_removed_once():
    text = " From the start\n >not a quote\n  indented two\nplain"
    assert decode_flowed(text) == "From the start\n>not a quote\n indented two\nplain"


def test_stuffed_lines_join_after_unstuffing():
    assert decode_flowed(" From here \n on") == "From here on"


def test_quoted_flowed_lines_join_within_their_depth():
    text = "> Did you \n> see it?\n>> Deeper \n>> quote.\nMy \nanswer."
    assert decode_flowed(text) == "> Did you see it?\n>> Deeper quote.\nMy answer."


def test_a_change_of_quote_depth_ends_a_flowed_paragraph():
    # The quoted line claims to flow, but the next line is not quoted: never join across depths.
    assert decode_flowed("> quoted \nmine") == "> quoted\nmine"


def test_signature_separator_is_never_flowed_nor_joined_onto():
    text = "Thanks, \nJo \n-- \nJo Bloggs \nAcme"
    assert decode_flowed(text) == "Thanks, Jo\n-- \nJo Bloggs Acme"


def test_quoted_signature_separator_is_kept_apart():
    assert decode_flowed("> Bye \n> -- \n> Ann") == "> Bye\n> -- \n> Ann"


def test_trailing_space_line_followed_by_an_empty_line_keeps_the_paragraph_break():
    text = "First paragraph ends here. \n\nSecond paragraph."
    assert decode_flowed(text) == "First paragraph ends here.\n\nSecond paragraph."


def test_quoted_empty_line_keeps_the_quoted_paragraph_break():
    assert decode_flowed("> one \n>\n> two") == "> one\n>\n> two"


def test_last_line_flowed_at_the_end_of_the_text():
    assert decode_flowed("dangling \n") == "dangling\n"


def test_text_without_soft_breaks_only_loses_its_stuffing():
    text = "Line one\n From stuffed\n> quoted\n"
    assert decode_flowed(text) == "Line one\nFrom stuffed\n> quoted\n"


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("text/plain; charset=utf-8; format=flowed", (True, False)),
        ('text/plain; charset="utf-8"; Format="flowed"', (True, False)),
        ("text/plain; format=flowed; delsp=yes", (True, True)),
        ('text/plain; charset=UTF-8;\n format="flowed"; DelSp="Yes"', (True, True)),
        ("text/plain; format=flowed; delsp=no", (True, False)),
        ("text/plain; format=fixed", (False, False)),
        ("text/plain; charset=us-ascii", (False, False)),
        ('text/plain; name="format=flowed.txt"', (False, False)),
        ("", (False, False)),
    ],
)
def test_flowed_params_from_the_content_type_header(content_type, expected):
    assert flowed_params(content_type) == expected
