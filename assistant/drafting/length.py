"""How long a draft should be: the length the user writes, learned from their own sent mail.

A draft's length is a number of words said in the prompt ("Length: about 60 words"), the point past which the model
is brought to a close at its next sentence and line end (``Length.aim_tokens``: small models and adapters write on
well past a number they are told, and before part of it is written a sign-off is held back, as some stop after
two sentences; see ``backend.CloseNear``), and the room given to the model (its token budget). Without a choice it
is the user's usual length for that kind of email (a reply or a new email), to that person, else to their organisation,
else to anyone: the median of their own emails, rounded to a step a person would say. Mail to a person or an
organisation is mail addressed to them (To), not mail they were copied on: on a mailing list a reply copies everyone
in a long thread, and counting those (the 100 most recent) made the length to a person 1.25 times the email's at
the median over linaro-mm-sig's sent mail (1.04 counting To alone; ``bench/quality.py --asked-lengths``). The same
words describe each training email's real length, so an adapter learns to follow the number.
``short``/``medium``/``long`` are fixed lengths that override it.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import sqlite_utils

from assistant.drafting.backend import FLOOR, TOKENS_PER_WORD
from assistant.drafting.examples import organisation_mail, recipient_mail
from assistant.drafting.voice import recipients

CHOICES = {"short": 50, "medium": 120, "long": 250}  # words: what a choice asks for, whatever the user's habit
DEFAULT_WORDS = 120  # with no mail of the user's to go by
MIN_EMAILS = 3  # a median of fewer says little
RECENT = 50  # emails looked at per person or organisation: habits drift
_STEPS = (10, 20, 30, 40, 50, 60, 80, 100, 120, 150, 200, 250, 300, 400, 500, 600, 800)
# What a draft writes after it is told to close: the end of its sentence and the sign-off, about the same few
# tokens whatever its length (a fifth of a 40-word draft left too little: Don Quijote's adapter drafts came out
# 1.2 times the words asked for, QUALITY.md); at most half of a short draft. The sign-off is the user's own where
# their mail shows one (``Length.closing_with``): the end of the sentence then takes SENTENCE_END_TOKENS, with which
# the adapter + examples' median draft comes to 0.95-1.07 of the words asked for on the four sets of QUALITY.md;
# CLOSE_TOKENS is the room for a usual one
# ("Best regards,\nAna Lopez"). Kay Brown signs "Kay": with 24 tokens kept for it, her adapter's drafts came out
# 0.87 of the words asked for.
CLOSE_TOKENS, SENTENCE_END_TOKENS, MIN_AIM_SHARE = 24, 10, 0.5
MIN_TOKENS, MAX_TOKENS = 96, 1024


@dataclass(frozen=True)
class Length:
    """The words a draft aims at, and where that number came from."""

    words: int
    basis: str  # "chosen", "to this person", "to this organisation", "usual", "default", "this email"
    close: int = CLOSE_TOKENS  # tokens left for the end of the last sentence and the sign-off

    @property
    def guidance(self) -> str:
        return f"about {self.words} words"

    @property
    def aim_tokens(self) -> int:
        """Where the model is brought to a close (see ``backend.CloseNear``): the words in tokens, less the room
        that finishing the sentence and signing off take."""
        tokens = self.words * TOKENS_PER_WORD
        return int(max(tokens * MIN_AIM_SHARE, tokens - self.close))

    def closing_with(self, signoff_tokens: int) -> Length:
        """This length, leaving room for the end of a sentence and a sign-off of ``signoff_tokens`` (the user's
        own: a writer who signs "Kay" needs less room than "Best regards,\nAna Lopez")."""
        return replace(self, close=SENTENCE_END_TOKENS + max(0, signoff_tokens))

    @property
    def floor_tokens(self) -> int:
        """Before this, a sign-off and the end of the reply are held back (``backend.CloseNear``): ``FLOOR`` of the
        words' tokens. Of the aim, it would be least where it counts most: the aim of a short draft leaves the
        same room for the close as a long one's, so a 50-word draft could sign off after 26 words. Never past
        the aim."""
        return min(self.aim_tokens, int(self.words * TOKENS_PER_WORD * FLOOR))

    def max_tokens(self, n_ctx: int) -> int:
        """The model's room: twice the words' tokens (a draft may run long and must not be cut), bounded."""
        want = int(self.words * TOKENS_PER_WORD * 2) + 32
        return max(MIN_TOKENS, min(MAX_TOKENS, want, n_ctx // 2))


def words_of(text: str) -> int:
    return len(text.split())


def rounded(words: float) -> int:
    """The nearest step a person would say (10, 20, … 120, 150, 200 …), so lengths read as habits, not counts."""
    return min(_STEPS, key=lambda step: (abs(step - words), step))


def of_email(text: str) -> Length:
    """The length of a real email, said the way a draft's is (training writes each email's own)."""
    return Length(rounded(words_of(text)), "this email")


def usual_length(
    db: sqlite_utils.Database,
    to: str | None,
    reply: bool,
    *,
    choice: str | None = None,
    exclude: Iterable[int] = (),
    copied: bool = False,
) -> Length:
    """The length a draft to ``to`` should have (see the module docstring).

    Args:
        reply: the draft answers an email (replies are usually shorter than new emails).
        choice: short, medium or long: a fixed length instead of the habit.
        exclude: message ids not to learn from (evaluation hides the emails it scores against).
        copied: count mail the person or organisation was copied on too (the rule before; ``bench/quality.py
            --asked-lengths`` compares the two).
    """
    if choice:
        if choice not in CHOICES:
            raise ValueError(f"unknown length {choice!r}")
        return Length(CHOICES[choice], "chosen")
    hidden = set(exclude)
    if to and "@" in to:
        mail = recipient_mail(db, to)
        address = to.strip().lower()
        at_domain = address[address.rindex("@") :]
        if copied:  # the rule before: the 100 most recent emails to or copying them, then the organisation's others
            steps = ((mail.person, "to this person", None), (mail.organisation(), "to this organisation", None))
        else:  # every email addressed to them, and to anyone at the organisation (mail to the person among it)
            steps = (
                (mail.person, "to this person", lambda addr: addr == address),
                (organisation_mail(db, address), "to this organisation", lambda addr: addr.endswith(at_domain)),
            )
        for ids, basis, addressed in steps:
            kept = [i for i in ids if i not in hidden]
            words = _median(db, kept[: RECENT * 2] if copied else kept, reply, addressed=addressed)
            if words is not None:
                return Length(rounded(words), basis)
    rows = db.execute(
        "SELECT id FROM messages WHERE sent_by_me = 1 AND automated = 0 AND is_forward = 0 AND body != '' "
        "ORDER BY date DESC LIMIT ?",
        [RECENT * 20 + len(hidden)],
    ).fetchall()
    words = _median(db, [r[0] for r in rows if r[0] not in hidden], reply, limit=RECENT * 20)
    return Length(rounded(words), "usual") if words is not None else Length(DEFAULT_WORDS, "default")


def _median(
    db: sqlite_utils.Database,
    ids: list[int],
    reply: bool,
    limit: int = RECENT,
    addressed: Callable[[str], bool] | None = None,
) -> float | None:
    """The median words of the user's emails among ``ids`` of the same kind (reply or new), newest first; with
    ``addressed``, only those with an address in To that it accepts. Read 500 at a time until ``limit`` are found,
    the text only of those kept: someone copied on thousands of emails costs a look at their headers."""
    if not ids:
        return None
    counts: list[int] = []
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        kept = [
            row_id
            for row_id, in_reply_to, to_json in db.execute(
                f"SELECT id, in_reply_to, to_json FROM messages WHERE id IN ({marks}) ORDER BY date DESC", chunk
            )
            if bool(in_reply_to) == reply and (addressed is None or any(map(addressed, to_addresses(to_json))))
        ]
        if kept:
            marks = ",".join("?" * len(kept))
            bodies = dict(db.execute(f"SELECT id, body FROM messages WHERE id IN ({marks})", kept).fetchall())
            counts.extend(words_of(bodies[i]) for i in kept if bodies[i].strip())
        if len(counts) >= limit:
            break
    counts = counts[:limit]
    return statistics.median(counts) if len(counts) >= MIN_EMAILS else None


def to_addresses(to_json: str | None) -> list[str]:
    """The addresses of a stored To header, lower-cased; none where it is malformed (``voice.recipients``)."""
    return [address.strip().lower() for _name, address in recipients(to_json)]
