"""Which sent emails become training pairs: the filters (with counts by reason) and the pick for ``--limit``.

A pair teaches the model the user's voice, so only the user's own, hand-written words qualify: sent by the
user, not machine mail, not a forward, and long enough to carry a voice but not a pasted document. With a
limit, emails are picked greedily by usefulness: recent mail first (habits drift), non-trivial length, and a
penalty for every email already picked to the same recipient, on the same topic or in the same thread, so
a few busy threads cannot crowd out everyone else. The greedy order is stable: the pick for a limit of 100
is the start of the pick for 200, so raising the limit reuses everything already built.
"""

from __future__ import annotations

import heapq
import json
import math
import re
from collections import Counter
from dataclasses import dataclass

import sqlite_utils

from assistant.mail.threads import normalize_subject

MIN_CHARS = 20
MAX_CHARS = 4000
MIN_WORDS = 4
# Usefulness: recency and length are worth up to 1.0 each; each earlier pick sharing a trait costs this.
SAME_RECIPIENT = 0.12
SAME_TOPIC = 0.35
SAME_THREAD = 0.5
_GREETING = re.compile(r"^\s*(hi|hello|hey|dear|hiya|morning|good (morning|afternoon|evening))\b[^\n]*$", re.I)
_CLOSING = re.compile(
    r"^\s*(best|thanks|thank you|cheers|regards|kind regards|best regards|warm regards|warmly|sincerely|"
    r"yours|all the best|many thanks|talk soon|take care|love|thx|speak soon)\b[ ,.!]*$",
    re.I,
)


@dataclass
class Candidate:
    """One sent email that can become a pair."""

    id: int
    message_id: str
    thread_id: str
    date: str
    subject: str
    to: list[tuple[str, str]]  # (name, address) of To, then Cc
    body: str
    in_reply_to: str
    content_hash: str

    @property
    def recipient(self) -> str:
        return self.to[0][1].lower() if self.to else ""

    @property
    def topic(self) -> str:
        return normalize_subject(self.subject)

    @property
    def thread(self) -> str:
        return self.thread_id or self.message_id


def own_text(body: str) -> str:
    """``body`` without its greeting line and sign-off lines: what the email says, one line per line."""
    lines = [ln.strip() for ln in body.strip().splitlines() if ln.strip()]
    if len(lines) > 1 and _GREETING.match(lines[0]):
        lines = lines[1:]
    while len(lines) > 1 and (_CLOSING.match(lines[-1]) or len(lines[-1].split()) <= 2):
        lines = lines[:-1]  # "Best," and the name under it
    return "\n".join(lines)


def own_words(body: str) -> list[str]:
    return own_text(body).split()


def reject_reason(row: dict, seen_bodies: set[str]) -> str | None:
    """Why a sent message cannot be a pair, or None when it can. ``seen_bodies`` collects normalised bodies."""
    body = (row["body"] or "").strip()
    if row["automated"]:
        return "automated"
    if row["is_forward"]:
        return "forward"
    if not body:
        return "empty"
    if len(body) < MIN_CHARS:
        return "too_short"
    if len(body) > MAX_CHARS:
        return "too_long"
    if len(own_words(body)) < MIN_WORDS:
        return "too_few_words"
    key = " ".join(body.lower().split())
    if key in seen_bodies:
        return "duplicate"  # the same text twice teaches nothing new and leaks across the split
    seen_bodies.add(key)
    return None


def find_candidates(db: sqlite_utils.Database) -> tuple[list[Candidate], dict[str, int]]:
    """Every usable sent email, newest first, and how many sent emails were filtered out, by reason."""
    sql = (
        "SELECT id, message_id, thread_id, date, subject, to_json, cc_json, body, in_reply_to, content_hash, "
        "automated, is_forward FROM messages WHERE sent_by_me = 1 ORDER BY date DESC, id DESC"
    )
    cursor = db.execute(sql)
    names = [d[0] for d in cursor.description]
    found: list[Candidate] = []
    filtered: Counter = Counter()
    seen: set[str] = set()
    for values in cursor:
        row = dict(zip(names, values, strict=True))
        reason = reject_reason(row, seen)
        if reason:
            filtered[reason] += 1
            continue
        found.append(
            Candidate(
                id=row["id"],
                message_id=row["message_id"],
                thread_id=row["thread_id"] or "",
                date=row["date"] or "",
                subject=row["subject"] or "",
                to=_people(row["to_json"]) + _people(row["cc_json"]),
                body=row["body"].strip(),
                in_reply_to=(row["in_reply_to"] or "").strip().strip("<>"),
                content_hash=row["content_hash"] or "",
            )
        )
    return found, dict(filtered)


def _people(raw: str | None) -> list[tuple[str, str]]:
    try:
        return [(str(name or ""), str(addr or "")) for name, addr in json.loads(raw or "[]")]
    except (ValueError, TypeError):
        return []


def _base_score(c: Candidate, recency: float) -> float:
    words = len(own_words(c.body))  # greeting and sign-off say nothing about how substantial it is
    # Length saturates: a 100-word email is not worth twice a 50-word one, but a one-liner is worth little.
    length = min(1.0, math.log1p(words) / math.log1p(50))
    return recency + length


def pick_useful(candidates: list[Candidate], limit: int | None) -> list[Candidate]:
    """The ``limit`` most useful candidates in pick order (all of them when ``limit`` is None or larger).

    Lazy greedy selection: penalties only grow as picks are made, so a stale score is an upper bound and
    a candidate whose fresh score still beats the next stale one is the true best (as in submodular
    maximisation). That keeps it near O(n log n) for tens of thousands of emails.
    """
    if limit is None:
        limit = len(candidates)
    ranked = sorted(range(len(candidates)), key=lambda i: (candidates[i].date, candidates[i].id))
    n = max(1, len(ranked) - 1)
    recency = {idx: pos / n for pos, idx in enumerate(ranked)}  # oldest 0.0 .. newest 1.0
    by_recipient: Counter = Counter()
    by_topic: Counter = Counter()
    by_thread: Counter = Counter()

    def score(i: int) -> float:
        c = candidates[i]
        penalty = SAME_RECIPIENT * by_recipient[c.recipient] + SAME_TOPIC * by_topic[c.topic]
        return _base_score(c, recency[i]) - penalty - SAME_THREAD * by_thread[c.thread]

    heap = [(-score(i), -candidates[i].id, i) for i in range(len(candidates))]
    heapq.heapify(heap)
    picked: list[Candidate] = []
    while heap and len(picked) < limit:
        stale, tie, i = heapq.heappop(heap)
        fresh = -score(i)
        if heap and fresh > heap[0][0] + 1e-12:  # worse than the next best's bound: look again later
            heapq.heappush(heap, (fresh, tie, i))
            continue
        c = candidates[i]
        picked.append(c)
        by_recipient[c.recipient] += 1
        by_topic[c.topic] += 1
        by_thread[c.thread] += 1
    return picked
