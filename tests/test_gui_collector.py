"""Garbage collection on the GUI thread: a worker thread's allocations never start a collection while it runs."""

from __future__ import annotations

import gc
import threading
import weakref

import pytest

from assistant.gui.collector import GuiThreadCollector


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


@pytest.fixture
def collections():
    """The thread of every collection that starts while the test runs."""
    threads: list[int] = []

    def started(phase: str, info: dict) -> None:
        if phase == "start":
            threads.append(threading.get_ident())

    gc.callbacks.append(started)
    yield threads
    gc.callbacks.remove(started)


def allocate_in_a_worker(n: int = 20_000) -> weakref.ref:
    """Makes n cycles in a worker thread (far past the youngest generation's threshold); a reference to the first."""
    first: list[weakref.ref] = []

    def work() -> None:
        nodes = [Node() for _ in range(n)]
        first.append(weakref.ref(nodes[0]))

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    return first[0]


def test_without_it_a_worker_thread_starts_a_collection(collections):
    # The reason for the collector: Python collects in whichever thread crosses the threshold.
    assert gc.isenabled()
    allocate_in_a_worker()
    assert any(thread != threading.get_ident() for thread in collections)


def test_garbage_from_a_worker_is_collected_on_the_gui_thread(qtbot, collections):
    collector = GuiThreadCollector(interval_ms=10)
    try:
        assert not gc.isenabled()
        garbage = allocate_in_a_worker()
        assert collections == []  # nothing collected in the worker
        assert garbage() is not None
        qtbot.waitUntil(lambda: garbage() is None)
        assert collections and set(collections) == {threading.get_ident()}
    finally:
        collector.stop()
    assert gc.isenabled()


def test_a_generation_is_collected_only_past_its_threshold(qtbot):
    collector = GuiThreadCollector(interval_ms=60_000)  # checked by hand below
    try:
        gc.collect()
        assert collector.check() is None  # counts are back at zero
        allocate_in_a_worker(n=gc.get_threshold()[0] + 100)
        assert collector.check() == 0
        assert gc.get_count()[0] < gc.get_threshold()[0]
    finally:
        collector.stop()


def test_stop_leaves_collection_off_when_it_was_off_before(qtbot):
    gc.disable()
    try:
        GuiThreadCollector().stop()
        assert not gc.isenabled()
    finally:
        gc.enable()
