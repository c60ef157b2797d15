"""The copy guard: a draft must not repeat 50 or more characters of another person's mail.

After each draft is written, :class:`CopyGuard` checks it against (a) the email being answered and (b) the
mail other people sent that is in the store. The user's own mail is theirs to reuse: a run that also appears
in something the user sent (their sign-off, boilerplate, a paragraph they wrote before) or in the
instruction they typed is allowed, even when someone else's mail has it too. Quoted history inside the
user's sent mail is not stored (only the user's own words are), so it never counts as the user's.

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
from typing import Any

import sqlite_utils

from assistant.drafting.prompting import ReplyContext
from assistant.overlap import DEFAULT_MIN_CHARS, CopyIndex, normalise

log = logging.getLogger("mailvoice.drafting")

MIN_CHARS = DEFAULT_MIN_CHARS
PHRASE = 4  # words per probe phrase
STEP = 2  # a probe starts at every STEP-th word of the draft
CANDIDATES = 64  # stored messages checked per draft (the best-ranked matches), and as many of the user's own
RETRIES = 2  # drafts written again (with other seeds) before a copied run is cut out instead
REPLY = "reply"  # the source key of the email being answered
_WORD = re.compile(r"[^\W_]+")  # what SQLite's unicode61 tokenizer takes as a word


@dataclass(frozen=True)
class Copied:
    """``text[start:end]`` of the draft repeats ``chars`` characters (normalised) of other people's mail."""

    start: int
    end: int
    chars: int
    sources: tuple[str, ...]  # "reply", or the Message-IDs of stored emails that hold it

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
    """

    def __init__(self, db: sqlite_utils.Database, reply: ReplyContext | None = None, allowed: Iterable[str] = ()):
        self.db = db
        self.others = CopyIndex(MIN_CHARS)
        self.own = CopyIndex(MIN_CHARS)
        self._seen: set[int] = set()
        self._reply_row = reply.row_id if reply is not None else None
        if reply is not None and reply.body.strip():
            self.others.add(reply.body, key=REPLY)
        for text in allowed:
            self.own.add(text, key="")
        self.checked = 0

    def check(self, text: str) -> list[Copied]:
        """The runs of ``text`` that repeat 50+ characters of other people's mail and of nothing of the user's."""
        phrases = probes(text)
        self._add_candidates(phrases, mine=False)
        found = self.others.find(text)
        if not found:
            return []
        self._add_candidates(phrases, mine=True)
        spans = _merge([(c.start, c.end, str(c.key)) for c in found])
        own = _merge([(c.start, c.end, "") for c in self.own.find(text)])
        copied = []
        for start, end, keys in spans:
            for a, b in _subtract((start, end), [(s, e) for s, e, _ in own]):
                chars = len(normalise(text[a:b])[0])
                if chars >= MIN_CHARS:
                    copied.append(Copied(a, b, chars, tuple(sorted(keys))))
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
            (self.own if mine else self.others).add(body, key="" if mine else message_id)


def timed_check(guard: CopyGuard, text: str, report: GuardReport) -> list[Copied]:
    """:meth:`CopyGuard.check`, with the copied characters and the time added to ``report``."""
    started = time.perf_counter()
    copied = guard.check(text)
    report.ms += (time.perf_counter() - started) * 1000
    report.checked = guard.checked
    if copied:
        report.found.append(sum(c.chars for c in copied))
        log.info("a draft repeated %d characters of other people's mail", report.found[-1])
    return copied


def notice(i: int, report: GuardReport) -> str:
    """The line the user reads when the guard acted on draft ``i`` (0-based)."""
    what = f"Draft {i + 1} repeated {report.found[0]} characters of another person's email"
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
