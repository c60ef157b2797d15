"""The store: migrations applied once, WAL, private files, damage detected with a way out."""

from __future__ import annotations

import multiprocessing
import stat
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlite_utils

from assistant.errors import StoreError
from assistant.paths import data_dir
from assistant.store import open_store
from assistant.store.fts import index_pending
from assistant.store.migrations import MIGRATIONS, apply


def test_migrations_apply_once_on_memory_db():
    db = sqlite_utils.Database(memory=True)
    assert apply(db) == [m.__name__ for m in MIGRATIONS]
    assert apply(db) == []
    assert {"messages", "messages_fts", "import_runs", "skipped", "import_files", "settings"} <= set(
        db.table_names()
    )


def _open_and_count(root: str) -> int:
    return open_store(Path(root)).execute("SELECT count(*) FROM _migrations").fetchone()[0]


def test_several_processes_opening_a_new_store_at_once_all_succeed_and_migrate_it_once(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        counts = pool.map(_open_and_count, [str(tmp_path / "new")] * 8)
    assert counts == [len(MIGRATIONS)] * 8
    db = open_store(tmp_path / "new")
    assert [r[0] for r in db.execute("SELECT name FROM _migrations ORDER BY rowid")] == [m.__name__ for m in MIGRATIONS]


def test_several_threads_opening_a_new_store_at_once_all_succeed(tmp_path):
    with ThreadPoolExecutor(6) as pool:
        counts = list(pool.map(_open_and_count, [str(tmp_path / "new")] * 12))
    assert counts == [len(MIGRATIONS)] * 12


def test_two_threads_making_the_same_new_store_at_the_same_moment_both_succeed(tmp_path):
    """The app's pages open a new data folder together on first start: creating the folder and switching the
    new file to WAL at the same moment must neither fail as "a file, not a folder" nor as "busy"."""
    for n in range(40):
        root = str(tmp_path / f"new{n}")
        start = threading.Barrier(2)

        def open_together(root: str = root, start: threading.Barrier = start) -> int:
            start.wait()
            return _open_and_count(root)

        with ThreadPoolExecutor(2) as pool:
            counts = [f.result() for f in [pool.submit(open_together) for _ in range(2)]]
        assert counts == [len(MIGRATIONS)] * 2


def test_store_uses_wal_and_private_files(data_home):
    db = open_store(data_dir())
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert stat.S_IMODE(data_home.stat().st_mode) == 0o700
    assert stat.S_IMODE((data_home / "mailvoice.db").stat().st_mode) == 0o600


def search(db, query):
    return db.execute("SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?", [query]).fetchall()


def test_fts_indexes_new_messages_in_bulk_once(db):
    db["messages"].insert({"message_id": "a@x", "subject": "Budget draft", "body": "see the numbers"})
    assert search(db, "numbers") == []  # stored, not yet indexed
    assert index_pending(db) == 1
    assert index_pending(db) == 0
    db["messages"].insert({"message_id": "b@x", "subject": "Numbers again", "body": "more"})
    assert index_pending(db) == 1
    assert len(search(db, "numbers")) == 2


def test_fts_follows_edits_and_deletes(db):
    db["messages"].insert({"id": 1, "message_id": "a@x", "subject": "Budget", "body": "old words"})
    index_pending(db)
    db["messages"].update(1, {"body": "new words"})
    assert search(db, "old") == [] and len(search(db, "new")) == 1
    db["messages"].delete(1)
    assert search(db, "new") == []


def test_damaged_database_is_reported_with_a_way_out(data_home):
    data_dir()
    (data_home / "mailvoice.db").write_bytes(b"SQLite format 3\x00" + b"\xff" * 4096)
    with pytest.raises(StoreError, match="Move it aside"):
        open_store(data_dir(), check=True)
