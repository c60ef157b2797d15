"""The train/validation split: 90/10 by a hash of the thread, so a conversation never sits on both sides.

Replies in one thread quote and echo each other; with one on each side, validation would measure recall
of the training set rather than writing. The split is a pure function of the thread id (SHA-256, not
Python's salted ``hash``), so it is the same on every machine and every run. One adjustment keeps small
sets usable: when no thread hashes into validation and there are at least two threads, the thread with the
smallest hash goes there (the one closest to the line), so evaluation always has something to score.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import sqlite_utils

TRAIN = "train"
VALIDATION = "validation"
SPLITS = (TRAIN, VALIDATION)
VALIDATION_SHARE = 0.10


def thread_position(thread_key: str) -> float:
    """Where a thread falls in [0, 1): its hash as a fraction."""
    digest = hashlib.sha256(thread_key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_for(thread_key: str) -> str:
    """The side a thread belongs to by its hash alone."""
    return VALIDATION if thread_position(thread_key) < VALIDATION_SHARE else TRAIN


def assign(thread_keys: Iterable[str], validation_elsewhere: bool = False) -> dict[str, str]:
    """The side of every thread in a set: the hash rule, plus one validation thread when it gives none
    (and ``validation_elsewhere`` says no other pair is in validation either)."""
    keys = set(thread_keys)
    sides = {k: split_for(k) for k in keys}
    if len(keys) >= 2 and VALIDATION not in sides.values() and not validation_elsewhere:
        sides[min(keys, key=thread_position)] = VALIDATION
    return sides


def assign_splits(db: sqlite_utils.Database) -> int:
    """Give every pair its thread's side (pairs with a split from an imported dataset keep theirs).

    Returns how many pairs changed side.
    """
    rows = db.execute("SELECT id, thread_id, split FROM pairs WHERE split_fixed = 0").fetchall()
    fixed = db.execute("SELECT 1 FROM pairs WHERE split_fixed = 1 AND split = ? LIMIT 1", [VALIDATION]).fetchone()
    sides = assign((thread for _id, thread, _split in rows), validation_elsewhere=fixed is not None)
    changes = [(sides[thread], pair_id) for pair_id, thread, split in rows if sides[thread] != split]
    if changes:
        with db.conn:
            db.conn.executemany("UPDATE pairs SET split = ? WHERE id = ?", changes)
    return len(changes)
