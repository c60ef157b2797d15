"""Cleaning generated drafts: wrapping removed with exact results, and streaming that matches the saved text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assistant.drafting.postprocess import StreamCleaner, clean_draft, extract_subject, signoff_end

EMAIL = "Hi Rosa,\n\nCould the plumber come on Monday morning?\n\nBest,\nAlex"


@pytest.mark.parametrize(
    "raw",
    [
        "Sure! Here is your email:\n\n" + EMAIL,
        "Certainly! Here's a draft of the email to Rosa:\n" + EMAIL,
        "Subject: Plumber on Monday\n\n" + EMAIL,
        "Sure!\nSubject: Plumber on Monday\n\n" + EMAIL,
        "**Subject:** Plumber on Monday\n\n" + EMAIL,
        "```\n" + EMAIL + "\n```",
        "<email>\n" + EMAIL + "\n</email>",
        EMAIL + "\n\nLet me know if you'd like any changes!",
        EMAIL + "\n\nI hope this email helps. Feel free to adjust the tone.",
        EMAIL + "\n\n(Note: you can adjust the day if needed.)",
        "Here is the email:\n```\n" + EMAIL + "\n```\nFeel free to tweak the wording!",
        "   \n\n" + EMAIL + "   \n\n",
    ],
)
def test_wrapping_is_removed_exactly(raw):
    assert clean_draft(raw) == EMAIL


@pytest.mark.parametrize(
    "raw",
    [
        "Sure, happy to help with the move!\n\nCheers,\nAlex",  # an email that starts with "Sure"
        "Great news: the email went out this morning.\n\nBest,\nAlex",
        "Hi Tom,\n\nLet me know if you have any questions.",  # a real closing line, not chatter
        "Hi Tom,\n\nHere are the numbers.\n\n- rent: 1200\n- deposit: 2400\n\nThanks,\nAlex",
        "Okay Rosa, I'll be there at 9.",
    ],
)
def test_real_email_text_is_kept(raw):
    assert clean_draft(raw) == raw


def test_placeholders_are_filled_when_names_are_known():
    raw = "Hi [Recipient's Name],\n\nSee you Monday.\n\nBest,\n[Your Name]"
    assert clean_draft(raw, me="Alex", recipient="Rosa") == "Hi Rosa,\n\nSee you Monday.\n\nBest,\nAlex"
    assert clean_draft(raw) == raw  # unknown names: left for the user to see


def test_subject_is_extracted():
    assert extract_subject("Sure!\nSubject: Plumber on Monday\n\nHi Rosa,") == "Plumber on Monday"
    assert extract_subject("Hi Rosa,\n\nSubject: this is body text") == ""


def test_signoff_end_stops_after_the_users_name_line():
    raw = EMAIL + "\nKenji Watanabe\nLisbon office"
    end = signoff_end(raw, ["Alex", "Alex Morgan"])
    assert raw[:end] == EMAIL
    assert signoff_end(EMAIL, ["Alex"]) is None  # the name line is not finished yet
    assert signoff_end(EMAIL + "\n", ["Tom"]) is None
    assert signoff_end("Best of all, Alex\nsaid yes\n", ["Alex"]) is None


RAWS = [
    "Sure! Here is your email:\n\nSubject: Faucet\n\nHi [Recipient's Name],\n\nCould the plumber come?\n\n"
    "Best,\n[Your Name]\n\nLet me know if you'd like any changes!",
    "Certainly! I've drafted the email below.\n```\nHi Tom,\nThanks.\n```\nI hope this helps with your email!",
    "Hi Tom,\n\nLet me know if you have questions.\n\nThis email is short.\n\nThanks,\nAlex",
    "Okay Rosa, I'll be there.\n\n---\n",
    "Dear team,\n\nNote: the office is closed on Friday.\n\nRegards,\nAlex",
    "<email>\nHi,\n\nSee [the attached file].\n</email>\n\nFeel free to customize the tone.",
]


@settings(max_examples=200, deadline=None)
@given(raw=st.sampled_from(RAWS), cuts=st.lists(st.integers(min_value=1, max_value=400), max_size=60))
def test_streamed_text_equals_the_saved_text(raw, cuts):
    """Whatever the chunking, what the user watched appear is exactly what gets saved."""
    points = sorted({c for c in cuts if c < len(raw)})
    chunks = [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True)]
    cleaner = StreamCleaner(me="Alex", recipient="Rosa")
    shown = "".join(cleaner.feed(c) for c in chunks) + cleaner.finish()
    assert shown == clean_draft(raw, me="Alex", recipient="Rosa") == cleaner.text


def test_stream_holds_back_a_preamble_until_it_is_sure():
    cleaner = StreamCleaner()
    assert cleaner.feed("Sure") == ""
    assert cleaner.feed("! Here is the email:\n") == ""
    assert cleaner.feed("Hi") == "Hi"  # "Hi" cannot start a preamble: shown at once
    assert cleaner.feed(" Rosa,\n\nSee you.\n\nLet me know") == " Rosa,\n\nSee you."
    assert cleaner.feed(" if you need any changes.") == ""
    assert cleaner.finish() == ""
    assert cleaner.text == "Hi Rosa,\n\nSee you."
