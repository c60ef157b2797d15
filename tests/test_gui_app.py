"""The desktop window: builds offscreen, imports a mailbox off the GUI thread, and can cancel."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

from assistant.gui.app import MainWindow  # noqa: E402
from assistant.mail import generate as gen  # noqa: E402


@pytest.fixture
def window(qtbot, data_home):
    w = MainWindow(str(data_home))
    qtbot.addWidget(w)
    w.show()
    return w


def test_window_starts_empty_and_says_what_to_do(window):
    assert "0</b> messages" in window.summary.text()
    assert "Import your mail" in window.status.text()
    assert not window.bar.isVisible()


def test_import_runs_in_the_background_and_updates_the_summary(window, qtbot, tmp_path):
    box = tmp_path / "Sent.mbox"
    gen.write_mbox(box, gen.generate_messages(150, seed=2))
    window.start_import([str(box)])
    assert window.cancel_button.isVisible() and not window.import_file_button.isEnabled()
    with qtbot.waitSignal(window.thread.finished, timeout=60_000):
        pass
    assert window.import_file_button.isEnabled() and not window.bar.isVisible()
    assert "Done:" in window.status.text()
    from assistant.store import open_store

    db = open_store(window.root)
    stored, sent = db.execute("SELECT COUNT(*), SUM(sent_by_me) FROM messages").fetchone()
    assert 100 < stored <= 150
    assert f"<b>{stored:,}</b> messages" in window.summary.text()
    assert f"<b>{sent:,}</b> sent by you" in window.summary.text()


def test_a_folder_without_mail_shows_a_message(window, qtbot, tmp_path, monkeypatch):
    shown = []
    monkeypatch.setattr("assistant.gui.app.QMessageBox.warning", lambda *a: shown.append(a[2]))
    (tmp_path / "notes.txt").write_text("nothing here\n")
    window.start_import([str(tmp_path / "notes.txt")])
    with qtbot.waitSignal(window.thread.finished, timeout=30_000):
        pass
    assert shown and shown[0].startswith("No mail found")


def test_compose_streams_a_draft_from_the_fake_backend(qtbot, data_home):
    from assistant.drafting.backend import FakeBackend

    fake = FakeBackend()
    fake.enqueue("Hi Anna,\n\nI can't make Thursday. Could we do Monday instead?\n\nBest,\nAlex")
    window = MainWindow(str(data_home), backend_factory=lambda: fake)
    qtbot.addWidget(window)
    page = window.compose
    chunks = []
    page.instruction.setPlainText("tell Anna I can't make Thursday, propose Monday")
    page.generate()
    page.worker.chunk.connect(chunks.append)
    with qtbot.waitSignal(page.thread.finished, timeout=30_000):
        pass
    assert page.output.toPlainText().startswith("Hi Anna,") and page.output.toPlainText().endswith("Alex")
    assert page.status.text().startswith("Saved.")
    assert fake.prompts and "Thursday" in str(fake.prompts[-1])
    from assistant.store import open_store

    assert open_store(window.root).execute("SELECT COUNT(*) FROM drafts").fetchone()[0] == 1


def test_compose_reports_an_empty_instruction(qtbot, data_home):
    window = MainWindow(str(data_home))
    qtbot.addWidget(window)
    window.compose.generate()
    with qtbot.waitSignal(window.compose.thread.finished, timeout=30_000):
        pass
    assert window.compose.status.text().startswith("The instruction is empty")
