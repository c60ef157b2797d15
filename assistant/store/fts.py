"""Keeping the full-text index of messages up to date, in bulk, and searching stored mail with it.

Messages are indexed after they are stored, in large transactions, instead of by a per-row trigger:
FTS5 builds far fewer segments that way (``bench/fts_bench.py``: 31 µs per message instead of 79 µs for
insert + index). The highest indexed message id is kept in ``settings`` in the same transaction, so an import
killed between storing and indexing is caught up by the next call, never indexed twice.
"""

from __future__ import annotations

import unicodedata
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


SNIPPET_CHARS = 200
_NOT_ASCII = "*[^\x01-\x7f]*"  # GLOB: a text with a letter beyond ASCII


def _fold(text: str | None) -> str:
    """Lower case without accents, as the full-text index compares words ("Álvarez" finds "alvarez")."""
    decomposed = unicodedata.normalize("NFKD", (text or "").casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def matching(db: sqlite_utils.Database, query: str) -> tuple[str, list]:
    """The SQL condition on ``messages m`` (and its arguments) that :func:`search_messages` finds ``query`` with:
    every word starts a word of the subject or text, or is part of the sender's name or address ("1" for none)."""
    db.conn.create_function("mailvoice_fold", 1, _fold, deterministic=True)
    conditions, args = [], []
    for word in query.split()[:8]:
        phrase = '"' + word.replace('"', "") + '"*'  # quoted: no word is read as FTS syntax
        if phrase == '""*':
            continue
        like = "%" + _fold(word).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        # SQLite's LIKE ignores ASCII case already: only names with other letters are folded in Python, a call
        # per message (bench/browse_bench.py, 100,000 messages: a word found nowhere took 2.3 s, now 1.1 s).
        sender = " OR ".join(
            f"m.{c} LIKE ? ESCAPE '\\' OR (m.{c} GLOB ? AND mailvoice_fold(m.{c}) LIKE ? ESCAPE '\\')"
            for c in ("from_name", "from_addr")
        )
        conditions.append(f"(m.id IN (SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?) OR {sender})")
        args += [phrase, *[like, _NOT_ASCII, like] * 2]
    return " AND ".join(conditions) or "1", args


def search_messages(db: sqlite_utils.Database, query: str, limit: int = 50) -> list[dict]:
    """Stored messages holding every word of ``query``, newest first (the email to answer, found by the user).

    A word matches the start of a word in the subject or text (the full-text index, so only indexed mail is
    found: see :func:`index_pending`), or any part of the sender's name or address. An empty query lists the
    newest messages. Each row: ``id``, ``message_id``, ``date``, ``from_name``, ``from_addr``, ``subject``,
    ``snippet`` (the start of the text, on one line) and ``sent_by_me``.
    """
    where, args = matching(db, query)
    rows = db.execute(
        "SELECT m.id, m.message_id, m.date, m.from_name, m.from_addr, m.subject, substr(m.body, 1, ?), m.sent_by_me "
        f"FROM messages m WHERE {where} ORDER BY m.date IS NULL, m.date DESC, m.id DESC LIMIT ?",
        [SNIPPET_CHARS * 2, *args, limit],
    ).fetchall()
    keys = ("id", "message_id", "date", "from_name", "from_addr", "subject", "snippet", "sent_by_me")
    found = [dict(zip(keys, row, strict=True)) for row in rows]
    for r in found:
        r["snippet"] = " ".join((r["snippet"] or "").split())[:SNIPPET_CHARS]
        r["sent_by_me"] = bool(r["sent_by_me"])
    return found
