"""The Inbox page: triage from the page, the list and its filter, a message's details, Stop keeping what was done,
the .ics export, no-folders said quietly, and Draft a reply handing the message to Compose."""

from __future__ import annotations

import threading
from pathlib import Path

import mailgen as gen
import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from assistant.errors import Cancelled
from assistant.gui.app import COMPOSE, INBOX, MainWindow
from assistant.gui.inbox_page import NOTHING_STORED, NOTHING_TRIAGED, InboxPage
from assistant.gui.inbox_view import CATEGORY, EVENTS, FOLDER, SHORT, local_when
from assistant.importer import import_paths
from assistant.inbox import triage
from assistant.inbox.categories import LABELS
from assistant.inbox.ics import read_ics
from assistant.store import open_store

MESSAGES = 150


@pytest.fixture
def maildir(data_home: Path, tmp_path: Path) -> Path:
    """A generated mailbox as a maildir (Inbox, Archive, Sent: folders to learn filing from), imported."""
    gen.write_maildir(tmp_path / "Inbox", gen.generate_messages(MESSAGES, seed=2))
    import_paths(open_store(data_home), [tmp_path / "Inbox"])
    return data_home


def make_page(qtbot, root: Path) -> InboxPage:
    page = InboxPage(str(root))
    qtbot.addWidget(page)
    page.resize(1000, 700)
    page.show()
    with qtbot.waitSignal(page.refreshed, timeout=10_000):
        page.refresh()
    return page


def triage_from_page(qtbot, page: InboxPage) -> triage.Summary:
    """Press Triage (the empty state's button, else the list's); the run's summary once it ended and the list was
    read again."""
    button = page.empty_triage if page.empty_triage.isVisible() else page.triage_button
    assert button.isVisible() and button.isEnabled()
    with qtbot.waitSignals([page.triaged, page.refreshed], order="simple", timeout=30_000):
        button.click()
    assert page.summary is not None
    return page.summary


def shown(page: InboxPage, column: int) -> list[str]:
    return [page.proxy.index(r, column).data() for r in range(page.proxy.rowCount())]


def test_empty_states_say_what_to_do(qtbot, data_home, maildir):
    page = make_page(qtbot, maildir)
    assert page.list_or_empty.currentIndex() == 1 and page.empty.text() == NOTHING_TRIAGED and page.empty.isVisible()
    assert page.empty_triage.isVisible() and page.empty_triage.isEnabled() and not page.triage_button.isVisible()
    assert not page.reply_button.isVisible() and not page.bar.isVisible() and not page.export_button.isEnabled()


def test_with_nothing_imported_triage_waits_for_mail(qtbot, tmp_path):
    page = make_page(qtbot, tmp_path / "empty")
    assert page.empty.text() == NOTHING_STORED and page.list_or_empty.currentIndex() == 1
    assert not page.empty_triage.isEnabled() and "Mail page (Ctrl+1)" in page.empty.text()


def test_triage_lists_the_newest_mail_and_filters_by_category(qtbot, maildir):
    page = make_page(qtbot, maildir)
    summary = triage_from_page(qtbot, page)
    assert summary.triaged == summary.pending > 100 and not summary.cancelled and summary.filing == ""
    assert page.list_or_empty.currentIndex() == 0 and page.model.rowCount() == summary.triaged
    assert page.run_status.text().startswith(f"Triaged {summary.triaged:,} messages in ")
    assert not page.filing_note.isVisible() and not page.bar.isVisible()
    assert page.category.itemText(0) == f"All ({summary.triaged:,})"
    assert set(shown(page, CATEGORY)) <= {SHORT[c] + s for c in LABELS for s in ("", " (not sure)")}
    assert page.triage_button.isVisible() and page.reply_button.isVisible()
    assert any(shown(page, FOLDER)) and not page.table.isColumnHidden(FOLDER)  # learned from Inbox and Archive
    assert page.status.text().endswith("Everything is triaged.")
    events = page.category.findData("event")
    assert page.category.itemText(events) == f"{LABELS['event']} ({summary.categories['event']:,})"
    with qtbot.waitSignal(page.refreshed, timeout=10_000):
        page.category.setCurrentIndex(events)
    assert page.model.rowCount() == summary.categories["event"]
    assert {t.category for t in page.model.rows} == {"event"}
    again = triage_from_page(qtbot, page)  # only mail not triaged yet: none
    assert again.pending == 0 and page.run_status.text().startswith("No new mail to triage")


def test_a_selected_message_shows_its_reason_events_and_text(qtbot, maildir):
    page = make_page(qtbot, maildir)
    triage_from_page(qtbot, page)
    row = next(r for r in range(page.proxy.rowCount()) if page.proxy.index(r, EVENTS).data())
    page.table.selectRow(row)
    t = page.current_row()
    assert t is not None and t.events and page.reply_button.isEnabled()
    body = open_store(maildir).execute("SELECT body FROM messages WHERE id = ?", [t.id]).fetchone()[0]
    qtbot.waitUntil(lambda: "Reading…" not in page.detail.toPlainText(), timeout=10_000)
    text = page.detail.toPlainText()
    assert t.reason in text and f"Events ({len(t.events)})" in text
    for event in t.events:
        assert event["title"] in text
    if t.tasks:
        assert f"Tasks ({len(t.tasks)})" in text and t.tasks[0]["what"] in text
    assert " ".join(body.split()[:8]) in " ".join(text.split())
    assert local_when(t.date) in text


def test_stop_keeps_what_was_triaged_and_the_next_run_goes_on(qtbot, maildir, monkeypatch):
    page = make_page(qtbot, maildir)
    reached, go_on, calls = threading.Event(), threading.Event(), []
    real = triage._extract

    def slow(*args, **kwargs):
        calls.append(1)
        if len(calls) == 20:  # the run is under way: hold it here until Stop is pressed
            reached.set()
            go_on.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(triage, "_extract", slow)
    # What a person sees the moment the run ends, before its thread has quit: Triage is back, nothing runs.
    at_end = []
    page.triaged.connect(lambda _s: at_end.append((page.running_job(), page.triage_button.isEnabled())))
    with qtbot.waitSignals([page.triaged, page.refreshed], order="simple", timeout=30_000):
        page.empty_triage.click()
        qtbot.waitUntil(reached.is_set, timeout=20_000)
        assert page.running_job().startswith("Mail is being triaged") and page.bar.isVisible()
        assert not page.empty_triage.isEnabled() and page.stop_button.isVisible()
        page.stop_button.click()
        go_on.set()
    summary = page.summary
    assert summary.cancelled and summary.triaged == 20 < summary.pending
    assert page.model.rowCount() == 20 and page.run_status.text().startswith("Stopped: 20 of ")
    assert at_end == [(None, True)]
    assert page.running_job() is None and page.triage_button.isEnabled()
    rest = triage_from_page(qtbot, page)
    assert rest.pending == summary.pending - 20 and rest.triaged == rest.pending and not rest.cancelled


def test_a_run_stopped_before_its_summary_leaves_the_page_ready_for_the_next(qtbot, maildir, monkeypatch):
    page = make_page(qtbot, maildir)

    def stopped(*_args, **_kwargs):
        raise Cancelled()

    monkeypatch.setattr(triage, "run", stopped)
    page.empty_triage.click()
    qtbot.waitUntil(lambda: page.run_status.text().startswith("Stopped."), timeout=10_000)
    assert page.running_job() is None and page.empty_triage.isEnabled() and not page.stop_button.isVisible()


def test_export_events_writes_a_calendar(qtbot, maildir, tmp_path):
    page = make_page(qtbot, maildir)
    summary = triage_from_page(qtbot, page)
    out = tmp_path / "events.ics"
    page.export_to(str(out))
    qtbot.waitUntil(lambda: page.status.text().startswith("Wrote"), timeout=10_000)
    data = out.read_text(encoding="utf-8")
    assert data.startswith("BEGIN:VCALENDAR") and data.rstrip().endswith("END:VCALENDAR")
    parsed = read_ics(data)
    assert len(parsed.events) == summary.events > 0 and not parsed.problems
    assert page.status.text() == f"Wrote {summary.events:,} events to {out}."


def test_an_archive_without_folders_says_so_quietly(qtbot, data_home, tmp_path):
    box = tmp_path / "All mail.mbox"
    gen.write_mbox(box, gen.generate_messages(60, seed=3))
    import_paths(open_store(data_home), [box])
    page = make_page(qtbot, data_home)
    summary = triage_from_page(qtbot, page)
    assert summary.filing and page.filing_note.isVisible()
    assert page.filing_note.text() == f"No folder suggestions: {summary.filing}"
    assert not any(shown(page, FOLDER)) and page.table.isColumnHidden(FOLDER)
    assert not page.findChildren(QMessageBox)
    fresh = make_page(qtbot, data_home)  # opened later: the stored rows say it
    assert fresh.filing_note.isVisible() and fresh.filing_note.text().startswith("No folder suggestions")


def test_draft_a_reply_opens_compose_answering_the_message(qtbot, maildir, tmp_path):
    settings = QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat)
    window = MainWindow(str(maildir), settings=settings, wizard_on_first_start=False)
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignal(window.inbox.refreshed, timeout=10_000):
        window.nav.setCurrentRow(INBOX)
    page = window.inbox
    triage_from_page(qtbot, page)
    row = next(r for r in range(page.proxy.rowCount()) if not page.model.rows[page.proxy.mapToSource(
        page.proxy.index(r, 0)).row()].sent_by_me)  # fmt: skip
    page.table.selectRow(row)
    t = page.current_row()
    page.reply_button.click()
    assert window.current_page() == COMPOSE
    qtbot.waitUntil(lambda: window.compose.reply is not None, timeout=10_000)
    assert window.compose.reply.row_id == t.id and window.compose.to.text() == t.from_addr
    assert t.subject.split()[-1] in window.compose.reply_label.text()


def test_the_triaged_list_fits_a_small_screen_and_tab_reaches_every_control(qtbot, maildir, tmp_path):
    from test_gui_app import clipped, controls, scrolled, text_cut

    settings = QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat)
    window = MainWindow(str(maildir), settings=settings, wizard_on_first_start=False)
    qtbot.addWidget(window)
    window.resize(1024, 640)
    window.show()
    with qtbot.waitSignal(window.inbox.refreshed, timeout=10_000):
        window.nav.setCurrentRow(INBOX)
    triage_from_page(qtbot, window.inbox)
    window.inbox.table.selectRow(0)
    on_page = controls(window.inbox, window)
    assert {window.inbox.table, window.inbox.detail, window.inbox.reply_button, window.inbox.category} <= set(on_page)
    assert [w for w in on_page if clipped(w, window)] == []
    visible = [w for w in window.inbox.findChildren(QWidget) if w.isVisibleTo(window) and not scrolled(w, window)]
    assert [(type(w).__name__, w.text()) for w in visible if text_cut(w)] == []
    on_page[0].setFocus()
    reached = set()
    for _ in range(len(controls(window, window)) + 5):
        reached.add(QApplication.focusWidget())
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
    assert [w for w in on_page if w not in reached] == []
