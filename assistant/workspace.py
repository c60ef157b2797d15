"""The data folder a command, page or job works in, as one handle.

A :class:`Workspace` is made once (by the command line's context or the app's window) and handed down: its
``root`` is the data folder as a :class:`~pathlib.Path`, and :attr:`Workspace.db` is the store connection of
the calling thread, opened on first use and kept, so a page or job never re-derives the folder from a string or
opens a new connection per call. A connection whose database file was deleted or replaced under it (``forget``,
another data folder restored in place) is closed and opened again. :meth:`Workspace.release` closes every
thread's connection (before the folder is deleted).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from pathlib import Path
from typing import Any

import sqlite_utils

from assistant.paths import data_dir
from assistant.store import open_store
from assistant.store.db import get_setting, set_setting, store_replaced


class Workspace:
    """Args:
    root: the data folder; it is created (private) when new and refused when it holds someone else's files.
    check: run SQLite's quick check the first time the store is opened (the command line and the app do).
    """

    def __init__(self, root: str | os.PathLike[str] | None = None, *, check: bool = False):
        self.root: Path = data_dir(root)
        self._check = check
        self._local = threading.local()  # a thread's connection goes (and closes) with the thread
        self._lock = threading.Lock()
        self._open: weakref.WeakSet[sqlite_utils.Database] = weakref.WeakSet()  # for release()

    @classmethod
    def of(cls, where: Workspace | str | os.PathLike[str] | None) -> Workspace:
        """``where`` itself when it is a workspace, else the workspace of that data folder."""
        return where if isinstance(where, Workspace) else cls(where)

    @property
    def db(self) -> sqlite_utils.Database:
        """This thread's connection to the store (opened, and migrated, on first use)."""
        db = getattr(self._local, "db", None)
        if db is not None:
            try:
                if not store_replaced(db):
                    return db
                db.conn.close()
            except sqlite3.ProgrammingError:  # closed by release()
                pass
        with self._lock:
            check, self._check = self._check, False
        db = open_store(self.root, check=check)
        self._local.db = db
        with self._lock:
            self._open.add(db)
        return db

    def setting(self, key: str, default: Any = None) -> Any:
        return get_setting(self.db, key, default)

    def set_setting(self, key: str, value: Any) -> None:
        set_setting(self.db, key, value)

    def release(self) -> None:
        """Close every thread's connection; each thread's next use of :attr:`db` opens a new one."""
        with self._lock:
            connections = list(self._open)
            self._open = weakref.WeakSet()
        for db in connections:
            db.conn.close()

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"
