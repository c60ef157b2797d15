"""Grouping messages into conversations: References / In-Reply-To chains, then a subject fallback.

Runs over the whole store after an import (union-find over Message-IDs), so replies that arrive before
their parents, truncated References, and replies from clients that drop the headers all end up in one
thread. Thread ids are the Message-ID of the earliest message of the conversation.
"""

from __future__ import annotations

import re

import sqlite_utils

_REPLY_PREFIX = re.compile(
    r"^\s*(?:(?:re|aw|sv|vs|antw|odp|r|rif|ref|wg|fwd?|tr)\s*(?:\[\d+\])?\s*[:：]\s*)+", re.I
)
_SUBJECT_WINDOW_DAYS = 90


def normalize_subject(subject: str) -> str:
    return " ".join(_REPLY_PREFIX.sub("", subject or "").lower().split())


def is_reply_subject(subject: str) -> bool:
    return bool(_REPLY_PREFIX.match(subject or ""))


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        parent = self.parent
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(x, x) != root:  # path compression keeps later finds O(1)
            parent[x], x = root, parent[x]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[ra] = rb


def assign_threads(db: sqlite_utils.Database) -> int:
    """Recompute ``thread_id`` for every message; return how many rows changed."""
    rows = db.execute(
        "SELECT id, message_id, in_reply_to, refs, subject, date, thread_id FROM messages ORDER BY date, id"
    ).fetchall()
    uf = _UnionFind()
    last_by_subject: dict[str, tuple[str, str]] = {}
    for _id, mid, irt, refs, subject, date, _tid in rows:
        linked = False
        for parent in (refs or "").split() + ([irt] if irt else []):
            uf.union(parent, mid)
            linked = True
        key = normalize_subject(subject)
        if not linked and key and is_reply_subject(subject) and key in last_by_subject:
            other, other_date = last_by_subject[key]
            if _within_window(other_date, date):
                uf.union(other, mid)
        if key:
            last_by_subject[key] = (mid, date or "")
    earliest: dict[str, str] = {}
    for _id, mid, *_ in rows:  # rows are in date order: the first seen per root is the earliest
        earliest.setdefault(uf.find(mid), mid)
    updates = [
        (earliest[uf.find(mid)], rid) for rid, mid, *_rest, tid in rows if earliest[uf.find(mid)] != tid
    ]
    with db.conn:
        db.conn.executemany("UPDATE messages SET thread_id = ? WHERE id = ?", updates)
    return len(updates)


def _within_window(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return True
    from datetime import datetime

    try:
        delta = datetime.fromisoformat(b) - datetime.fromisoformat(a)
    except ValueError:
        return True
    return abs(delta.days) <= _SUBJECT_WINDOW_DAYS
