"""Opening the database: WAL mode, migrations, an integrity check, and clear errors when it fails."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlite_utils

from assistant.errors import StoreError
from assistant.paths import data_dir, db_path
from assistant.store import migrations


def open_store(root: Path, *, check: bool = False) -> sqlite_utils.Database:
    """Open (creating and migrating if needed) the database in data folder ``root``.

    Args:
        root: the data folder (see :func:`assistant.paths.data_dir`).
        check: run ``PRAGMA quick_check`` first and refuse a damaged database.
    """
    path = db_path(data_dir(root))  # creates the folder (0700) when it is new
    try:
        conn = sqlite3.connect(path, timeout=30, check_same_thread=False)
        if path.exists():
            os.chmod(path, 0o600)
        db = sqlite_utils.Database(conn)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable at checkpoints, never corrupt
        db.execute("PRAGMA foreign_keys=ON")
        if check:
            quick_check(db, path)
        migrations.apply(db)
    except sqlite3.DatabaseError as exc:
        raise StoreError(
            f"The database {path} cannot be opened ({exc}). Move it aside and import your mail again, "
            "or restore it from a backup."
        ) from exc
    return db


def quick_check(db: sqlite_utils.Database, path: Path | str = "") -> None:
    """Raise :class:`StoreError` when SQLite reports damage."""
    rows = [r[0] for r in db.execute("PRAGMA quick_check").fetchall()]
    if rows != ["ok"]:
        raise StoreError(
            f"The database {path} is damaged ({'; '.join(rows[:3])}). Move it aside and import your mail "
            "again, or restore it from a backup."
        )


def db_file(db: sqlite_utils.Database) -> str:
    """The path of the database file (for messages)."""
    row = db.execute("PRAGMA database_list").fetchone()
    return row[2] if row else "the database"


@contextlib.contextmanager
def writing(db: sqlite_utils.Database, again: str) -> Iterator[None]:
    """Turn a failed SQLite write inside the block (a full disk above all) into a :class:`StoreError` that says
    what to do; ``again`` continues the sentence, e.g. "run the same import again: it continues where it
    stopped". Callers write in transactions, so the store stays as it was after the last one."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        if "full" in str(exc).lower():
            raise StoreError(f"The disk holding {db_file(db)} is full. Free some space and {again}.") from exc
        raise StoreError(f"Writing to the database failed ({exc}). {again[:1].upper()}{again[1:]}.") from exc


def get_setting(db: sqlite_utils.Database, key: str, default: Any = None) -> Any:
    row = db.execute("SELECT value FROM settings WHERE key = ?", [key]).fetchone()
    return json.loads(row[0]) if row else default


def set_setting(db: sqlite_utils.Database, key: str, value: Any) -> None:
    with db.conn:
        db.execute("INSERT OR REPLACE INTO settings(key, value) VALUES (?, ?)", [key, json.dumps(value)])
