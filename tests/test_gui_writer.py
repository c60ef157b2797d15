"""The GUI's one database writer: writes run one at a time, in order, off the GUI thread; results come back on it."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtWidgets import QWidget

from assistant.errors import MailvoiceError
from assistant.gui import tasks
from assistant.store.db import get_setting, set_setting
from assistant.workspace import Workspace


@pytest.fixture
def ws(tmp_path):
    workspace = Workspace(tmp_path / "data")
    yield workspace
    tasks.writer(workspace).close()


def test_writes_run_in_order_on_one_thread_that_is_not_the_gui_thread(qtbot, ws):
    owner = QWidget()
    qtbot.addWidget(owner)
    threads, results = set(), []

    def put(i):
        def fn(db):
            threads.add(threading.get_ident())
            set_setting(db, "counter", get_setting(db, "counter", []) + [i])
            return i
        return fn

    for i in range(20):
        tasks.write(owner, ws, put(i), results.append)
    qtbot.waitUntil(lambda: len(results) == 20, timeout=10000)
    assert results == list(range(20))
    assert len(threads) == 1 and threading.get_ident() not in threads
    assert ws.setting("counter") == list(range(20))


def test_a_failed_write_reaches_its_caller_as_a_message(qtbot, ws):
    owner = QWidget()
    qtbot.addWidget(owner)
    failures = []

    def refuse(_db):
        raise MailvoiceError("The adapter 'nope' does not exist.")

    tasks.write(owner, ws, refuse, lambda _r: failures.append("done"), failures.append)
    qtbot.waitUntil(lambda: bool(failures), timeout=5000)
    assert failures == ["The adapter 'nope' does not exist."]


def test_wait_for_returns_after_the_writes_asked_before_it(qtbot, ws):
    owner = QWidget()
    qtbot.addWidget(owner)
    tasks.write(owner, ws, lambda db: set_setting(db, "n_threads", 5))
    assert tasks.writer(ws).wait_for(lambda db: get_setting(db, "n_threads")) == 5
    with pytest.raises(MailvoiceError):
        tasks.writer(ws).wait_for(lambda _db: (_ for _ in ()).throw(MailvoiceError("no")))


def test_a_write_whose_owner_is_gone_is_still_done_and_calls_nothing_back(qtbot, ws):
    owner = QWidget()
    called = []
    gate = threading.Event()
    tasks.write(owner, ws, lambda db: (gate.wait(5), set_setting(db, "n_threads", 2)), called.append)
    owner.deleteLater()
    qtbot.wait(50)  # the owner (and its relay) are deleted before the write ends
    gate.set()
    tasks.writer(ws).wait()
    qtbot.wait(50)
    assert called == [] and ws.setting("n_threads") == 2
