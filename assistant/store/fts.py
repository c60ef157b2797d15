"""Keeping the full-text index of messages up to date, in bulk.

Messages are indexed after they are stored, in large transactions, instead of by a per-row trigger:
FTS5 builds far fewer segments that way (``bench/fts_bench.py``: 31 µs per message instead of 79 µs for
insert + index). The highest indexed message id is kept in ``settings`` in the same transaction, so an import
killed between storing and indexing is caught up by the next call, never indexed twice.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlite_utils

from assistant.store.db import get_setting

_KEY = "fts_indexed_upto"
_STEP = 20_000


def pending(db: sqlite_utils.Database) -> int:
    upto = get_setting(db, _KEY, 0)
    return db.execute("SELECT COUNT(*) FROM messages WHERE id > ?", [upto]).fetchone()[0]


def index_pending(db: sqlite_utils.Database, progress: Callable[[int, int], None] | None = None) -> int:
    """Index every message not yet in ``messages_fts``; return how many were indexed."""
    total = pending(db)
    done = 0
    while done < total:
        upto = get_setting(db, _KEY, 0)
        with db.conn:
            last = db.execute(
                "SELECT max(id) FROM (SELECT id FROM messages WHERE id > ? ORDER BY id LIMIT ?)",
                [upto, _STEP],
            ).fetchone()[0]
            if last is None:
                break
            cur = db.execute(
                "INSERT INTO messages_fts(rowid, subject, body) "
                "SELECT id, subject, body FROM messages WHERE id > ? AND id <= ?",
                [upto, last],
            )
            db.execute("INSERT OR REPLACE INTO settings(key, value) VALUES (?, ?)", [_KEY, str(last)])
        done += cur.rowcount
        if progress:
            progress(done, total)
    return done
