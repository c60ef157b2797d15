"""The workspace handle: one connection per thread, reopened when the store is replaced, released on demand."""

from __future__ import annotations

import gc
import sqlite3
import threading
import weakref
from pathlib import Path

import pytest

from assistant.forget import forget
from assistant.workspace import Workspace


def _in_thread(fn):
    out = []
    t = threading.Thread(target=lambda: out.append(fn()))
    t.start()
    t.join()
    return out[0]


def test_a_thread_keeps_its_connection_and_another_thread_gets_its_own(tmp_path):
    ws = Workspace(tmp_path / "data")
    assert isinstance(ws.root, Path) and ws.root.is_dir()
    first = ws.db
    assert ws.db is first
    other = _in_thread(lambda: ws.db)
    assert other is not first
    assert _in_thread(lambda: ws.db.execute("SELECT count(*) FROM messages").fetchone()[0]) == 0


def test_of_hands_back_the_same_workspace_and_makes_one_from_a_folder(tmp_path):
    ws = Workspace(tmp_path / "data")
    assert Workspace.of(ws) is ws
    made = Workspace.of(str(tmp_path / "data"))
    assert made is not ws and made.root == ws.root


def test_a_store_deleted_under_the_workspace_is_opened_anew(tmp_path):
    ws = Workspace(tmp_path / "data")
    ws.set_setting("n_threads", 3)
    old = ws.db
    ws.release()
    forget(ws.root)
    assert ws.db is not old  # a new, empty store, not the deleted file
    assert ws.setting("n_threads") is None


def test_a_replaced_store_file_is_noticed_without_release(tmp_path):
    ws = Workspace(tmp_path / "data")
    ws.set_setting("n_threads", 3)
    old = ws.db
    db_file = Path(old.execute("PRAGMA database_list").fetchone()[2])
    for suffix in ("", "-wal", "-shm"):
        Path(str(db_file) + suffix).unlink(missing_ok=True)
    assert ws.db is not old
    assert ws.setting("n_threads") is None


def test_release_closes_every_threads_connection(tmp_path):
    ws = Workspace(tmp_path / "data")
    mine = ws.db
    theirs = _in_thread(lambda: ws.db)
    ws.release()
    for db in (mine, theirs):
        with pytest.raises(sqlite3.ProgrammingError):
            db.execute("SELECT 1")
    assert ws.db.execute("SELECT 1").fetchone() == (1,)


def test_a_threads_connection_goes_with_the_thread(tmp_path):
    ws = Workspace(tmp_path / "data")
    ref = _in_thread(lambda: weakref.ref(ws.db))
    gc.collect()
    assert ref() is None
