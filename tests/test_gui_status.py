"""The window's status bar: offline with the connections refused, the model and voice in use, and a chip for every
running job that leads back to where it runs."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import mailgen as gen
import pytest
from fakes import FakeBackend
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QToolButton

from assistant import netguard
from assistant.drafting.backend import EngineSettings
from assistant.drafting.models import MODEL_KEY, embedded_model_path
from assistant.gui.app import MAIL, TRAIN, MainWindow
from assistant.gui.status import SHORT, Job, job_from, offline_text
from assistant.importer import import_paths
from assistant.store import open_store
from assistant.store.adapters import ADAPTER_KEY
from assistant.store.db import set_setting


@pytest.fixture
def window(qtbot, data_home: Path, tmp_path: Path) -> MainWindow:
    settings = QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat)
    w = MainWindow(str(data_home), settings=settings, wizard_on_first_start=False)
    qtbot.addWidget(w)
    return w


@pytest.fixture
def guard():
    """The guard on in this process for one test, then the real socket functions and environment back."""
    outer = {name: os.environ.get(name) for name in netguard.OFFLINE_ENV}
    netguard.install()
    yield netguard
    netguard.uninstall()
    for name, value in outer.items():
        os.environ.pop(name, None)
        if value is not None:
            os.environ[name] = value


def test_the_status_bar_says_offline_and_counts_the_connections_refused(qtbot, guard, window):
    before = netguard.refused_count()
    status = window.status.offline
    assert status.text() == f"Offline · {before:,} connection{'s' * (before != 1)} refused"
    assert "refused before anything is sent" in status.toolTip()
    for _ in range(2):
        with socket.socket() as sock, pytest.raises(netguard.NetworkBlocked):
            sock.connect(("198.51.100.1", 80))  # RFC 5737 documentation range: refused before any packet
    # No call needed: the status bar reads the count again by itself.
    qtbot.waitUntil(lambda: status.text() == f"Offline · {before + 2:,} connections refused", timeout=5000)
    assert f"{before + 2:,} connections refused since Mailvoice started" in status.toolTip()


def test_without_the_guard_the_status_bar_does_not_claim_offline(window):
    assert not netguard.installed()
    assert window.status.offline.text() == "Network guard off"
    assert offline_text(True, 1) == (
        "Offline · 1 connection refused",
        "Mailvoice works offline: connections to other machines are refused before anything is sent. "
        "1 connection refused since Mailvoice started.",
    )


def test_the_model_and_voice_are_shown_short_with_the_whole_names_in_the_tooltip(qtbot, data_home, window):
    model = window.status.model
    if embedded_model_path() is not None:
        qtbot.waitUntil(lambda: "(built-in)" in model.text(), timeout=10_000)
        assert model.text().endswith("· Voice: none") and "the model alone" in model.toolTip()
    db = open_store(data_home)
    stem, voice = "Meta-Llama-3.1-8B-Instruct-abliterated-Q4_K_M", "alex-style-2024-06-01-long-run"
    set_setting(db, MODEL_KEY, f"/models/{stem}.gguf")
    set_setting(db, ADAPTER_KEY, voice)
    window.train.adapter_changed.emit(voice)  # as Use on the Train page does
    qtbot.waitUntil(lambda: "alex" in model.text(), timeout=10_000)
    cut = SHORT - 1  # long names end in an ellipsis: the status bar stays short at 1024 pixels
    assert model.text() == f"Model: {stem[:cut]}… · Voice: {voice[:cut]}…"
    assert f"/models/{stem}.gguf" in model.toolTip() and f"adapter {voice}" in model.toolTip()
    model.click()  # leads to where they are chosen
    assert window.current_page() == window.pages().index(window.settings_page)


class SlowLabeller(FakeBackend):
    """Writes a valid instruction for every email, slowly enough for a build to be seen running."""

    def stream(self, messages, params, cancel=None):
        time.sleep(0.2)
        self.enqueue("Tell them the plan for next week.")
        yield from super().stream(messages, params, cancel)


def start_pairs_build(qtbot, window: MainWindow, data_home: Path, tmp_path: Path) -> None:
    """A pairs build running on the Train page, with a fake writer of instructions."""
    box = tmp_path / "mail.mbox"
    gen.write_mbox(box, gen.generate_messages(40, seed=5))
    import_paths(open_store(data_home), [box], me=[gen.ME_ADDR])
    pairs = window.train.pairs
    pairs.backend_factory = lambda _db: SlowLabeller(settings=EngineSettings("fake.gguf", 2048))
    qtbot.waitUntil(lambda: not pairs.loading, timeout=20_000)
    pairs.build()
    qtbot.waitUntil(lambda: pairs.last_progress is not None and pairs.last_progress.done >= 1, timeout=30_000)


def stop_pairs_build(qtbot, window: MainWindow) -> None:
    window.train.pairs.stop_build()
    qtbot.waitUntil(lambda: not window.train.pairs.building and not window.train.pairs.loading, timeout=30_000)


def chips(window: MainWindow) -> list[QToolButton]:
    return [c for c in window.status.chip_row.findChildren(QToolButton, "jobChip") if c.isVisibleTo(window)]


def test_a_running_job_has_a_chip_on_every_page_that_leads_back_to_it(qtbot, window, data_home, tmp_path):
    window.show()
    assert chips(window) == [] and window.busy_reason() == ""
    window.nav.setCurrentRow(TRAIN)
    start_pairs_build(qtbot, window, data_home, tmp_path)
    window.nav.setCurrentRow(MAIL)  # leaving the page: the chip still says the build runs
    qtbot.waitUntil(lambda: len(chips(window)) == 1, timeout=5000)
    (chip,) = chips(window)
    assert chip.text() == "Training pairs are being built"
    qtbot.waitUntil(lambda: "emails labelled" in chip.toolTip(), timeout=5000)  # the progress, as it goes
    assert "Click to go to the Train page." in chip.toolTip()
    assert window.busy_reason() == "Training pairs are being built"
    qtbot.mouseClick(chip, Qt.MouseButton.LeftButton)
    assert window.current_page() == TRAIN and window.stack.currentWidget() is window.train
    stop_pairs_build(qtbot, window)
    qtbot.waitUntil(lambda: chips(window) == [], timeout=5000)


def test_the_import_has_a_chip_that_brings_its_window_back(qtbot, window, tmp_path):
    box = tmp_path / "more.mbox"
    gen.write_mbox(box, gen.generate_messages(400, seed=7))
    wizard = window.open_import_wizard([str(box)])
    wizard.next()
    qtbot.waitUntil(wizard.preview_page.isComplete, timeout=30_000)
    wizard.next()
    window.status.update_now()
    (chip,) = chips(window)
    assert chip.text() == "An import is running" and "the mail imported so far is kept" in chip.toolTip()
    assert window.status.jobs == [
        Job("An import is running", window.running_jobs()[0].detail, None, "the import window")
    ]
    window.go_to_job(window.status.jobs[0])
    assert wizard.isVisible()
    wizard.reject()
    window.status.update_now()
    assert chips(window) == []


def test_a_jobs_title_is_its_first_sentence_up_to_a_colon():
    job = job_from("Training pairs are being built: 3 of 40 emails labelled. Quitting stops it.", TRAIN, "Train")
    assert job.title == "Training pairs are being built"
    assert job_from("An adapter is being merged into its model. Quitting waits.", 1, "x").title == (
        "An adapter is being merged into its model"
    )
