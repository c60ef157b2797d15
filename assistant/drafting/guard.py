"""The copy guard: a draft must not repeat 50 or more characters of another person's mail, nor parrot a
style example.

After each draft is written, :class:`CopyGuard` checks it against (a) the email being answered, (b) the
mail other people sent that is in the store and (c) the user's past emails shown to the model as style
examples. The user's own mail is otherwise theirs to reuse: a run of someone else's mail that also appears
in something the user sent (their sign-off, boilerplate, a paragraph they wrote before, quoted back to them)
or in the instruction they typed is allowed. A run of a shown example is another
conversation's content copied whole (small models do this: a 135M model returned a shown example word for
word), so it is treated like a copy unless it is a habit of the user's: in the instruction, or in at least
:data:`HABIT` other emails of theirs. A run in one other email is still content: Christian König's adapter
wrote "the dma_fence_array and dma_fence_chain containers" from the example shown into an unrelated reply, a
phrase of one other email of his (QUALITY.md). Quoted history inside the user's sent mail is not stored
(only the user's own words are), so it never counts as the user's.

The store can hold 100,000 messages, so they are not indexed for every draft. Candidates are looked up
with one full-text query: the draft's words, as phrases of :data:`PHRASE` words starting at every
:data:`STEP`-th word, ORed together. Any copied run that holds ``PHRASE + STEP - 1`` whole words contains one
of those phrases whole, so the message it came from matches (50 characters of prose hold about 8 words);
the best-ranked :data:`CANDIDATES` are then checked character by character with
:class:`assistant.overlap.CopyIndex`, which alone decides what is a copy (a false candidate costs a little
time, never a false report). Runs with fewer whole words (a line of 50 dashes, one long link) are found
only in the email being answered.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from typing import Any

import sqlite_utils

from assistant.drafting.prompting import ReplyContext
from assistant.overlap import DEFAULT_MIN_CHARS, CopyIndex, normalise

log = logging.getLogger("mailvoice.drafting")

MIN_CHARS = DEFAULT_MIN_CHARS
PHRASE = 4  # words per probe phrase
STEP = 2  # a probe starts at every STEP-th word of the draft
CANDIDATES = 64  # stored messages checked per draft (the best-ranked matches), and as many of the user's own
HABIT = 2  # other emails of the user's that make a run of a shown example theirs to repeat (a sign-off, boilerplate)
RETRIES = 2  # drafts written again (with other seeds) before a copied run is cut out instead
REPLY = "reply"  # the source key of the email being answered
EXAMPLE = "example:"  # + the message's row id: the source key of a style example shown to the model
ALLOWED = ""  # the source key of the texts drafts may repeat (the instruction)
_WORD = re.compile(r"[^\W_]+")  # what SQLite's unicode61 tokenizer takes as a word


@dataclass(frozen=True)
class Copied:
    """``text[start:end]`` of the draft repeats ``chars`` characters (normalised) of other people's mail."""

    start: int
    end: int
    chars: int
    sources: tuple[str, ...]  # "reply", "example:ROW_ID", or the Message-IDs of stored emails that hold it

    @property
    def from_examples(self) -> bool:
        """Only in the user's own emails shown as style examples (not in anyone else's mail)."""
        return all(s.startswith(EXAMPLE) for s in self.sources)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "sources": list(self.sources)}


@dataclass
class GuardReport:
    """What the guard did for one draft (saved with it, in the draft's ``params``)."""

    rewritten: int = 0  # times the draft was written again
    removed: list[Copied] = field(default_factory=list)  # runs cut out of the last version
    found: list[int] = field(default_factory=list)  # characters copied, per version that copied
    checked: int = 0  # candidate messages checked
    ms: float = 0.0  # time spent checking

    @property
    def acted(self) -> bool:
        return bool(self.found)

    def to_json(self) -> dict[str, Any]:
        return {
            "rewritten": self.rewritten,
            "removed": [c.to_json() for c in self.removed],
            "found": self.found,
            "checked": self.checked,
            "ms": round(self.ms, 1),
        }


def probes(text: str) -> list[str]:
    """The FTS5 phrases for ``text``: :data:`PHRASE` consecutive words from every :data:`STEP`-th word."""
    words = [w.lower() for w in _WORD.findall(text)]
    if len(words) < PHRASE:
        return []
    starts = range(0, len(words) - PHRASE + 1, STEP)
    last = len(words) - PHRASE  # the tail too, so a copy at the very end is never between two probes
    return list(dict.fromkeys(" ".join(words[i : i + PHRASE]) for i in [*starts, last]))


class CopyGuard:
    """Checks the drafts of one request; build it once, call :meth:`check` on every version of every draft.

    Args:
        db: the store (its ``messages_fts`` index must be current; drafting brings it up to date first).
        reply: the email being answered, if any.
        allowed: texts of the user that drafts may repeat (the instruction).
        examples: (row id, body) of the user's emails shown to the model as style examples.
    """

    def __init__(
        self,
        db: sqlite_utils.Database,
        reply: ReplyContext | None = None,
        allowed: Iterable[str] = (),
        examples: Iterable[tuple[int, str]] = (),
    ):
        self.db = db
        self.others = CopyIndex(MIN_CHARS)
        self.shown = CopyIndex(MIN_CHARS)
        self.own = CopyIndex(MIN_CHARS)
        self._seen: set[int] = set()
        self._reply_row = reply.row_id if reply is not None else None
        if reply is not None and reply.body.strip():
            self.others.add(reply.body, key=REPLY)
        for row_id, body in examples:
            self._seen.add(row_id)  # in ``shown``, never in ``own``: an example cannot excuse a copy of itself
            self.shown.add(body, key=f"{EXAMPLE}{row_id}")
        for text in allowed:
            self.own.add(text, key=ALLOWED)
        self.checked = 0

    def check(self, text: str) -> list[Copied]:
        """The runs of ``text`` that repeat 50+ characters of other people's mail, and of nothing the user wrote;
        or of a shown example, and neither of the instruction nor of ``HABIT`` other emails of the user's (a
        sign-off they always write is theirs to repeat)."""
        phrases = probes(text)
        self._add_candidates(phrases, mine=False)
        others = [(c.start, c.end, str(c.key)) for c in self.others.find(text)]
        shown = [(c.start, c.end, str(c.key)) for c in self.shown.find(text)]
        if not others and not shown:
            return []
        self._add_candidates(phrases, mine=True)
        own = [(c.start, c.end, str(c.key)) for c in self.own.find(text)]

        def chars(start: int, end: int) -> int:
            return len(normalise(text[start:end])[0])

        # What is left of a run once the user's words are taken out is measured all together: the user's line
        # in the middle of someone else's two sentences, or two emails that each hold part of a shown run, do
        # not make the rest theirs. whole: those pieces, kept however short each is.
        parts, whole = [], []

        def left(rest: list[tuple[int, int]]) -> bool:
            return sum(chars(a, b) for a, b in rest) >= MIN_CHARS

        for start, end, key in others:
            rest = _subtract((start, end), [(s, e) for s, e, _ in own + shown])
            parts += [(a, b, key) for a, b in rest]
            if left(rest):
                whole += rest
        for start, end, key in shown:
            mine = [span for span in own + shown if span[2] not in (key, ALLOWED)]
            habit = [(s, e) for s, e, k in own if k == ALLOWED] + _covered(mine, HABIT)
            rest = _subtract((start, end), habit)
            if left(rest):
                parts += [(a, b, key) for a, b in rest]
                whole += rest
        copied = []
        for start, end, keys in _merge(parts):
            n = chars(start, end)
            if n >= MIN_CHARS or any(start <= a and b <= end for a, b in whole):
                copied.append(Copied(start, end, n, tuple(sorted(keys))))
        return copied

    def _add_candidates(self, phrases: list[str], mine: bool) -> None:
        """Index the best-ranked stored messages (of others, or the user's) holding any of ``phrases``."""
        if not phrases:
            return
        query = "body : (" + " OR ".join(f'"{p}"' for p in phrases) + ")"
        rows = self.db.execute(
            "SELECT m.id, m.message_id, m.body FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid "
            "WHERE messages_fts MATCH ? AND m.sent_by_me = ? ORDER BY messages_fts.rank LIMIT ?",
            [query, int(mine), CANDIDATES],
        ).fetchall()
        for row_id, message_id, body in rows:
            if row_id in self._seen or row_id == self._reply_row or not body:
                continue
            self._seen.add(row_id)
            self.checked += 1
            (self.own if mine else self.others).add(body, key=f"own:{row_id}" if mine else message_id)


def timed_check(guard: CopyGuard, text: str, report: GuardReport) -> list[Copied]:
    """:meth:`CopyGuard.check`, with the copied characters and the time added to ``report``."""
    started = time.perf_counter()
    copied = guard.check(text)
    report.ms += (time.perf_counter() - started) * 1000
    report.checked = guard.checked
    if copied:
        report.found.append(sum(c.chars for c in copied))
        log.info("a draft repeated %d characters of stored mail", report.found[-1])
    return copied


def notice(i: int, report: GuardReport, examples_only: bool = False) -> str:
    """The line the user reads when the guard acted on draft ``i`` (0-based).

    ``examples_only``: every copied run of the first version came from the style examples shown.
    """
    whose = "one of your past emails shown as an example" if examples_only else "another person's email"
    what = f"Draft {i + 1} repeated {report.found[0]} characters of {whose}"
    if report.removed:
        cut = sum(c.chars for c in report.removed)
        return f"{what}; after {report.rewritten} more tries the {cut} repeated characters were cut out."
    return f"{what}; it was written again ({report.rewritten} time{'s' * (report.rewritten > 1)})."


def _merge(spans: list[tuple[int, int, str]]) -> list[tuple[int, int, set[str]]]:
    """Overlapping spans joined, with the keys of all the spans joined into each."""
    merged: list[tuple[int, int, set[str]]] = []
    for start, end, key in sorted(spans):
        if merged and start <= merged[-1][1]:
            last = merged[-1]
            merged[-1] = (last[0], max(last[1], end), last[2] | {key})
        else:
            merged.append((start, end, {key}))
    return merged


def _covered(spans: list[tuple[int, int, str]], times: int) -> list[tuple[int, int]]:
    """The stretches that spans of at least ``times`` different keys all cover."""
    edges = sorted({x for s, e, _ in spans for x in (s, e)})
    stretches: list[tuple[int, int]] = []
    for a, b in pairwise(edges):
        if len({k for s, e, k in spans if s <= a and b <= e}) >= times:
            if stretches and stretches[-1][1] == a:
                stretches[-1] = (stretches[-1][0], b)
            else:
                stretches.append((a, b))
    return stretches


def _subtract(span: tuple[int, int], holes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of ``span`` outside every hole."""
    parts, start, end = [], span[0], span[1]
    for a, b in sorted(holes):
        if b <= start or a >= end:
            continue
        if a > start:
            parts.append((start, a))
        start = max(start, b)
    if start < end:
        parts.append((start, end))
    return parts
