"""Opening the database: WAL mode, migrations, an integrity check, and clear errors when it fails.

A data folder or database that is read-only (a backup mounted read-only, a copy without write permission) is
opened read-only: what only reads (stats, identities, pairs list, adapters, exports) works, and a write says
the folder is read-only, which is true, rather than calling a healthy store damaged.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlite_utils

from assistant.errors import StoreError
from assistant.paths import data_dir, db_path
from assistant.permissions import tighten_data_folder
from assistant.store import migrations

_FILE_ATTR = "_mailvoice_file"  # (device, inode) of the database file a connection opened
PRIVATE_MODES_KEY = "private_modes"  # set once the files older versions wrote readable by others are tightened
_DAMAGE = ("not a database", "malformed", "corrupt")


OTHER_FOLDER = "Choose another with --data-dir."  # how the command line chooses another data folder


def open_store(root: Path, *, check: bool = False) -> sqlite_utils.Database:
    """Open (creating and migrating if needed) the database in data folder ``root``.

    Args:
        root: the data folder (see :func:`assistant.paths.data_dir`).
        check: run ``PRAGMA quick_check`` first and refuse a damaged database.
    """
    folder = data_dir(root)  # creates the folder (0700) when it is new
    path = db_path(folder)
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return _open_read_only(path, check)
    try:
        conn = sqlite3.connect(path, timeout=30, check_same_thread=False)
        db = sqlite_utils.Database(conn)
        _use_wal(db)
        _make_private(path)
        db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable at checkpoints, never corrupt
        db.execute("PRAGMA foreign_keys=ON")
        if check:
            quick_check(db, path)
        migrations.apply(db)
    except sqlite3.DatabaseError as exc:
        raise open_error(path, exc) from exc
    _remember_file(db, path)
    _tighten_once(db, folder)
    return db


def _use_wal(db: sqlite_utils.Database, timeout: float = 30.0) -> None:
    """Switch to WAL, waiting while another connection creates the same new database.

    SQLite answers "database is locked" at once, without the busy timeout, when two connections switch a new
    file to WAL together (the app's pages open the store in parallel on first start)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _make_private(path: Path) -> None:
    """Take group and other permissions off the database (never add any: a read-only copy stays read-only)."""
    with contextlib.suppress(OSError):  # a file we may not change (another owner): it still opens
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            os.chmod(path, mode & 0o700)


def _open_read_only(path: Path, check: bool) -> sqlite_utils.Database:
    """Open a database whose folder or file cannot be written; :class:`StoreError` when that cannot work."""
    if not path.exists():
        raise StoreError(read_only_message(path), cli=OTHER_FOLDER)
    uri = f"file:{quote(str(path))}?mode=ro"
    try:
        try:
            db = _read_only_db(uri)
        except sqlite3.OperationalError as exc:
            wal = path.with_name(path.name + "-wal")
            if wal.exists() and wal.stat().st_size:  # SQLite reads a -wal only with a -shm it can make beside it
                raise StoreError(
                    f"{read_only_message(path)} (Its newest changes wait in {wal.name}, which SQLite reads only "
                    "in a folder it can write to.)",
                    cli=OTHER_FOLDER,
                ) from exc
            db = _read_only_db(uri + "&immutable=1")  # no -shm can be made; nothing pending in a -wal either
        if check:
            quick_check(db, path)
        if _outdated(db):
            raise StoreError(
                f"{read_only_message(path)} This version of Mailvoice needs to update the database first, "
                "which needs write access.",
                cli=OTHER_FOLDER,
            )
    except sqlite3.DatabaseError as exc:
        raise open_error(path, exc) from exc
    _remember_file(db, path)
    return db


def _outdated(db: sqlite_utils.Database) -> bool:
    """True when a migration has not been applied (without applying it: read-only connections cannot)."""
    if "_migrations" not in db.table_names():
        return True
    done = {row[0] for row in db.execute("SELECT name FROM _migrations")}
    return any(fn.__name__ not in done for fn in migrations.MIGRATIONS)


def _read_only_db(uri: str) -> sqlite_utils.Database:
    conn = sqlite3.connect(uri, uri=True, timeout=30, check_same_thread=False)
    conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # opening is lazy: fail here, not later
    db = sqlite_utils.Database(conn)
    db.execute("PRAGMA foreign_keys=ON")
    return db


def read_only_message(path: Path | str) -> str:
    """What to say when the data folder (or its database) cannot be written."""
    path = Path(path)
    folder = path.parent
    if os.access(folder, os.W_OK) and path.exists():
        return (
            f"The database {path} is read-only: Mailvoice can show what it holds but not change it. Make it "
            f"writable (chmod u+w {path}), or choose another data folder."
        )
    return (
        f"The data folder {folder} is read-only: Mailvoice can show what it holds but not change it. Make it "
        "writable, or choose another data folder."
    )


def open_error(path: Path, exc: sqlite3.DatabaseError) -> StoreError:
    """Say what is true about a database that cannot be opened: damaged, read-only, busy, or a full disk."""
    text = str(exc).lower()
    if any(word in text for word in _DAMAGE):
        return StoreError(
            f"The database {path} is damaged ({exc}). Move it aside and import your mail again, or restore it "
            "from a backup."
        )
    if "readonly" in text or "read-only" in text:
        return StoreError(read_only_message(path), cli=OTHER_FOLDER)
    if "locked" in text or "busy" in text:
        return StoreError(
            f"The database {path} is busy: another Mailvoice is writing to it. Try again when it has finished."
        )
    if "full" in text:
        return StoreError(f"The disk holding {path} is full. Free some space and try again.")
    return StoreError(
        f"The database {path} cannot be opened ({exc}). Check that you can read and write {path.parent}, or "
        "choose another data folder.",
        cli=OTHER_FOLDER,
    )


def _remember_file(db: sqlite_utils.Database, path: Path) -> None:
    with contextlib.suppress(OSError):
        info = path.stat()
        setattr(db, _FILE_ATTR, (info.st_dev, info.st_ino))


def store_replaced(db: sqlite_utils.Database) -> bool:
    """True when the database file this connection opened was deleted or replaced since (``mailvoice forget``).

    Such a connection still reads and writes, but into a file no one will ever open again."""
    known = getattr(db, _FILE_ATTR, None)
    if known is None:
        return False
    try:
        info = os.stat(db_file(db))
    except OSError:
        return True
    return (info.st_dev, info.st_ino) != known


def _tighten_once(db: sqlite_utils.Database, folder: Path) -> None:
    """Make private, once, what older versions left readable by others (training runs, caches, adapters)."""
    if get_setting(db, PRIVATE_MODES_KEY):
        return
    tighten_data_folder(folder)
    with contextlib.suppress(sqlite3.OperationalError):  # busy: the next opening does it
        set_setting(db, PRIVATE_MODES_KEY, True)


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
        if "readonly" in str(exc).lower():
            raise StoreError(read_only_message(db_file(db)), cli=OTHER_FOLDER) from exc
        raise StoreError(f"Writing to the database failed ({exc}). {again[:1].upper()}{again[1:]}.") from exc


def get_setting(db: sqlite_utils.Database, key: str, default: Any = None) -> Any:
    row = db.execute("SELECT value FROM settings WHERE key = ?", [key]).fetchone()
    return json.loads(row[0]) if row else default


def set_setting(db: sqlite_utils.Database, key: str, value: Any) -> None:
    with db.conn:
        db.execute("INSERT OR REPLACE INTO settings(key, value) VALUES (?, ?)", [key, json.dumps(value)])
