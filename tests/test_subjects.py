"""Subjects for prompts: reply/forward chains, list tags and gateway markers off, the real subject kept."""

from __future__ import annotations

import pytest

from assistant.mail.subjects import is_reply, prompt_subject


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("[List] Re: [EXTERN] Re: Re: Budget review", "Budget review"),
        ("Re: Re: Re: Dinner", "Dinner"),
        ("RE: FW: Fwd: Fw: Invoice 2291", "Invoice 2291"),
        ("AW: WG: Angebot", "Angebot"),
        ("SV: VS: Antw: Odp: TR: RV: RES: Enc: Meeting", "Meeting"),
        ("re: fwd: lower case", "lower case"),
        ("Re[2]: Re(3): Re^4: Counters", "Counters"),
        ("Re : RE： Spaces and full-width colons", "Spaces and full-width colons"),
        ("回复：转发：会议纪要", "会议纪要"),
        ("Ответ: Отчёт", "Отчёт"),
        ("[hikers-club] Saturday walk", "Saturday walk"),
        ("[hikers-club] - Saturday walk", "Saturday walk"),
        ("Re: [hikers-club] Re: Saturday walk", "Saturday walk"),
        ("[EXTERNAL] Invoice", "Invoice"),
        ("*EXTERNAL* Re: Lunch", "Lunch"),
        ("**EXTERNAL** Lunch", "Lunch"),
        ("(External Sender) Lunch", "Lunch"),
        ("EXTERNAL: Re: Lunch", "Lunch"),
        ("[Fwd: Old news]", "Old news"),
        ("Budget (fwd)", "Budget"),
        ("  Re:   lots   of\n space ", "lots of space"),
        # Only a tag, or only prefixes: nothing rather than a tag posing as the subject.
        ("[List]", ""),
        ("Re:", ""),
        ("Fwd: [List] Re: [EXTERN]", ""),
        ("", ""),
        (None, ""),
        # The real subject is kept, even where it looks like a prefix.
        ("Budget review", "Budget review"),
        ("Review: Q3 numbers", "Review: Q3 numbers"),
        ("Resume attached", "Resume attached"),
        ("VS Code: setup notes", "VS Code: setup notes"),
        ("R&D: plan", "R&D: plan"),
        ("External audit results", "External audit results"),
        ("Re: Q3: the numbers", "Q3: the numbers"),
        ("Re: Budget [draft]", "Budget [draft]"),
        ("Re: Fwd: Café au lait", "Café au lait"),
    ],
)
def test_prompt_subject(subject, expected):
    assert prompt_subject(subject) == expected


@pytest.mark.parametrize(
    ("subject", "reply"),
    [
        ("Re: Budget", True),
        ("[List] AW: Budget", True),
        ("*EXTERNAL* SV: Budget", True),
        ("Re: Fwd: Budget", True),  # answers a forward
        ("Fwd: Re: Budget", False),  # passes a reply on
        ("[Fwd: Budget]", False),
        ("Budget", False),
        ("Review: Budget", False),
        ("", False),
    ],
)
def test_is_reply(subject, reply):
    assert is_reply(subject) is reply


def test_cleaning_twice_changes_nothing():
    for subject in ("[List] Re: [EXTERN] Re: Re: Budget review", "Budget (fwd)", "[Fwd: Old news]", "Re: Q3: x"):
        once = prompt_subject(subject)
        assert prompt_subject(once) == once
