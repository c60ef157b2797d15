"""The Mail page's list and reading pane on a generated mailbox: what was imported, page by page, by class and
words; the author's words apart from what was taken out; addresses applied at once; the empty state; the keys."""

from __future__ import annotations

import shutil
from pathlib import Path

import mailgen as gen
import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QTextFrame

from assistant.gui.app import MAIL, TRAIN, MainWindow
from assistant.gui.mail_page import MailPage
from assistant.gui.mail_view import COLUMNS, MailView
from assistant.identities import load_me, relabel
from assistant.importer import import_paths
from assistant.mail.browse import PAGE, message_detail
from assistant.paths import DB_NAME
from assistant.store import open_store
from assistant.store.fts import search_messages
from trainer.pairs.candidates import find_candidates

WAIT = 30_000


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated mailbox of more than one page, imported once; each test gets a copy of the database."""
    folder = tmp_path_factory.mktemp("archive")
    gen.write_mbox(folder / "All mail.mbox", gen.generate_messages(PAGE + 150, seed=2))
    db = open_store(folder / "home")
    import_paths(db, [folder / "All mail.mbox"])
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.conn.close()
    return folder / "home" / DB_NAME


@pytest.fixture
def stored(archive: Path, data_home: Path) -> Path:
    data_home.mkdir(mode=0o700)
    shutil.copy(archive, data_home / DB_NAME)
    return data_home


def loaded_page(qtbot, root: Path) -> MailPage:
    page = MailPage(str(root))
    qtbot.addWidget(page)
    page.resize(1000, 700)
    page.show()  # the list fetches more as it is scrolled: it must be on screen
    with qtbot.waitSignal(page.view.model.page_loaded, timeout=WAIT):
        page.refresh()
    return page


def shown_message(qtbot, view: MailView, message: int) -> dict:
    """Select ``message`` in the list (scrolling pages in as a person would) and wait for the pane to show it."""
    model = view.model
    while message not in [r["id"] for r in model.rows]:
        assert model.canFetchMore(), f"message {message} is listed"
        with qtbot.waitSignal(model.page_loaded, timeout=WAIT):
            view.table.scrollToBottom()
    row = [r["id"] for r in model.rows].index(message)
    view.table.setCurrentIndex(model.index(row, 0))
    qtbot.waitUntil(lambda: view.pane.shown is not None and view.pane.shown["id"] == message, timeout=WAIT)
    teaches = lambda: view.pane.shown["teaches"]  # noqa: E731 - the verdict on the user's own mail comes second
    qtbot.waitUntil(lambda: teaches() is None or teaches()["used"] is not None, timeout=WAIT)
    return view.pane.shown


def listed(view: MailView) -> list[int]:
    return [
        view.model.data(view.model.index(i, 0), Qt.ItemDataRole.UserRole)["id"] for i in range(view.model.rowCount())
    ]


def test_the_list_shows_date_sender_subject_and_kind_a_page_at_a_time(qtbot, stored):
    page = loaded_page(qtbot, stored)
    view, model = page.view, page.view.model
    db = open_store(stored)
    total = db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    order = [i for (i,) in db.execute("SELECT id FROM messages ORDER BY date IS NULL, date DESC, id DESC")]
    assert total > PAGE and model.rowCount() == PAGE  # one page read, not every message
    assert [model.headerData(c, Qt.Orientation.Horizontal) for c in range(model.columnCount())] == list(COLUMNS)
    date, sender, subject, kind = db.execute(
        "SELECT date, from_name, subject, mail_class FROM messages WHERE id = ?", [order[0]]
    ).fetchone()
    cells = [model.data(model.index(0, c)) for c in range(4)]
    assert cells == [date[:16].replace("T", " "), sender, " ".join(subject.split()), kind.capitalize()]
    assert f"{PAGE} of {total:,} messages shown" in view.status.text()
    while model.canFetchMore():  # scrolling to the end reads the rest, a page at a time
        with qtbot.waitSignal(model.page_loaded, timeout=WAIT):
            view.table.scrollToBottom()
    assert listed(view) == order
    assert view.table.currentIndex().row() == 0  # the newest is open to read
    qtbot.waitUntil(lambda: view.pane.shown is not None and view.pane.shown["id"] == order[0], timeout=WAIT)


def test_the_filter_shows_one_class_with_its_count(qtbot, stored):
    page = loaded_page(qtbot, stored)
    view = page.view
    db = open_store(stored)
    for key, label in (("yours", "Yours"), ("automated", "Automated"), ("list", "Lists"), ("received", "Received")):
        count = db.execute("SELECT COUNT(*) FROM messages WHERE mail_class = ?", [key]).fetchone()[0]
        index = view.kind.findData(key)
        assert view.kind.itemText(index) == f"{label} ({count:,})"
        with qtbot.waitSignal(view.model.page_loaded, timeout=WAIT):
            view.kind.setCurrentIndex(index)
        expected = [i for (i,) in db.execute("SELECT id FROM messages WHERE mail_class = ? ORDER BY date IS NULL, "
                                             "date DESC, id DESC LIMIT ?", [key, PAGE])]  # fmt: skip
        assert listed(view) == expected and expected
        assert {view.model.data(view.model.index(r, 3)) for r in range(view.model.rowCount())} == {key.capitalize()}


def test_search_finds_mail_with_every_word_in_the_chosen_class(qtbot, stored):
    page = loaded_page(qtbot, stored)
    view = page.view
    db = open_store(stored)
    with qtbot.waitSignal(view.model.page_loaded, timeout=WAIT):
        view.search.setText("budget")  # searched once typing pauses
    found = [r["id"] for r in search_messages(db, "budget", limit=PAGE)]
    assert found and listed(view) == found
    assert f"{len(found)} messages with every word of “budget”" in view.status.text()
    with qtbot.waitSignal(view.model.page_loaded, timeout=WAIT):
        view.kind.setCurrentIndex(view.kind.findData("yours"))
    mine = {i for (i,) in db.execute("SELECT id FROM messages WHERE mail_class = 'yours'")}
    assert listed(view) == [i for i in found if i in mine]
    with qtbot.waitSignal(view.model.page_loaded, timeout=WAIT):
        view.search.setText("zzznotaword")
    assert view.model.rowCount() == 0 and view.status.text().startswith(
        "No messages of yours with every word of “zzznotaword”"
    )
    assert view.pane.shown is None


def test_the_pane_shows_the_kept_words_and_apart_what_was_taken_out(qtbot, stored):
    page = loaded_page(qtbot, stored)
    db = open_store(stored)
    usable = {c.id for c in find_candidates(db)[0]}
    message = next(i for (i,) in db.execute("SELECT id FROM messages WHERE sent_by_me = 1 AND quoted != '' AND "
                                            "signature != '' ORDER BY date DESC") if i in usable)  # fmt: skip
    detail = shown_message(qtbot, page.view, message)
    pane = page.view.pane
    text = pane.toPlainText()
    words_at = text.index("Your words, as Mailvoice kept them\n" + detail["body"])  # exactly what was kept
    assert text.index(detail["teaches"]["why"]) < words_at
    assert detail["teaches"]["why"].startswith("Can teach your style")
    (apart,) = [f for f in pane.document().rootFrame().childFrames() if "Taken out" in _frame_text(f)]
    inside = _frame_text(apart)
    assert "Quoted text (not the author's words)\n" + detail["quoted"] in inside
    assert "Signature\n" + detail["signature"] in inside
    assert apart.firstPosition() > words_at and apart.frameFormat().border() > 0
    assert f"Folder: {detail['folder']}\n" in header_text(pane) and detail["folder"]
    assert f"Labels: {', '.join(detail['labels'])}\n" in header_text(pane) and detail["labels"]


def test_the_pane_says_why_mail_is_automated_names_attachments_and_why_own_mail_does_not_teach(qtbot, stored):
    page = loaded_page(qtbot, stored)
    db = open_store(stored)
    (auto,) = db.execute("SELECT id FROM messages WHERE mail_class = 'automated' ORDER BY date DESC LIMIT 1").fetchone()
    detail = shown_message(qtbot, page.view, auto)
    flat = header_text(page.view.pane)
    assert f"Kind: Automated — {detail['auto_reason']}" in flat and detail["auto_reason"]
    assert detail["teaches"] is None and "your style" not in flat  # mail not yours teaches nothing: nothing said
    (files,) = db.execute("SELECT id FROM messages WHERE attachments != '[]' ORDER BY date DESC LIMIT 1").fetchone()
    detail = shown_message(qtbot, page.view, files)
    flat = header_text(page.view.pane)
    assert f"Attachments: {', '.join(detail['attachments'])} (names only" in flat
    usable = {c.id for c in find_candidates(db)[0]}
    short = next(i for (i,) in db.execute("SELECT id FROM messages WHERE sent_by_me = 1 ORDER BY date DESC")
                 if i not in usable)  # fmt: skip
    detail = shown_message(qtbot, page.view, short)
    assert detail["teaches"]["why"].startswith("Not used to learn your style: ")
    assert detail["teaches"] == message_detail(db, short)["teaches"]
    assert detail["teaches"]["why"] in page.view.pane.toPlainText()


def test_an_unticked_address_stays_unticked_after_switching_pages(qtbot, stored, tmp_path):
    db = open_store(stored)
    relabel(db, [gen.ME_ADDR, gen.ME_ALIAS])
    before = db.execute("SELECT COUNT(*) FROM messages WHERE sent_by_me = 1").fetchone()[0]
    window = MainWindow(str(stored), settings=QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat),
                        wizard_on_first_start=False)  # fmt: skip
    qtbot.addWidget(window)
    page = window.mail
    with qtbot.waitSignal(page.refreshed, timeout=WAIT):
        page.refresh()
    assert page.identities.states()[gen.ME_ALIAS] is True
    page.identities.check(gen.ME_ALIAS, False)
    window.nav.setCurrentRow(TRAIN)  # at once: no button to press first
    window.nav.setCurrentRow(MAIL)
    qtbot.waitUntil(lambda: load_me(db) == [gen.ME_ADDR], timeout=WAIT)
    qtbot.waitUntil(lambda: not page.applying and "sent by you" in page.identities_status.text(), timeout=WAIT)
    with qtbot.waitSignal(page.refreshed, timeout=WAIT):
        window.nav.setCurrentRow(TRAIN)
        window.nav.setCurrentRow(MAIL)
    assert page.identities.states()[gen.ME_ALIAS] is False
    after = db.execute("SELECT COUNT(*) FROM messages WHERE sent_by_me = 1").fetchone()[0]
    assert after < before and f"Saved: {after:,} stored messages are sent by you" in page.identities_status.text()
    assert f"<b>{after:,}</b> sent by you" in page.summary.text()


def test_ticks_made_while_mail_is_relabelled_follow_and_a_refresh_never_undoes_them(qtbot, stored):
    page = loaded_page(qtbot, stored)
    page.identities.check(gen.ME_ALIAS)  # starts re-labelling
    assert page.applying
    page.identities.extra.setText("alex.old@example.org")
    page.identities.add_extra()  # while it runs
    page.refresh()  # as switching pages does, with the first change still running
    with qtbot.waitSignal(page.refreshed, timeout=WAIT):
        pass
    qtbot.waitUntil(lambda: not page.applying and len(load_me(open_store(stored))) == 3, timeout=WAIT)
    assert load_me(open_store(stored)) == sorted([gen.ME_ADDR, gen.ME_ALIAS, "alex.old@example.org"])
    qtbot.waitUntil(lambda: page.identities.checked() and len(page.identities.checked()) == 3, timeout=WAIT)


def test_the_last_address_cannot_be_unticked(qtbot, stored):
    page = loaded_page(qtbot, stored)
    assert page.identities.checked() == [gen.ME_ADDR]
    page.identities.check(gen.ME_ADDR, False)
    assert page.identities.checked() == [gen.ME_ADDR] and not page.applying
    assert page.identities_status.text().startswith("At least one address stays yours")
    assert load_me(open_store(stored)) == [gen.ME_ADDR]


def test_a_bad_address_is_refused_in_words_and_the_stored_ones_come_back(qtbot, stored, monkeypatch):
    shown = []
    monkeypatch.setattr("assistant.gui.mail_page.tasks.show_error", lambda _parent, message: shown.append(message))
    page = loaded_page(qtbot, stored)
    page.identities.extra.setText("me@")
    with qtbot.waitSignal(page.refreshed, timeout=WAIT):
        page.identities.add_extra()
    assert shown and "'me@' is not an email address" in shown[0]
    assert page.identities_status.text().startswith("Your addresses were not changed: ")
    assert page.identities.checked() == [gen.ME_ADDR] == load_me(open_store(stored))


def test_with_nothing_imported_the_list_says_so_and_offers_import(qtbot, data_home):
    page = MailPage(str(data_home))
    qtbot.addWidget(page)
    page.show()
    with qtbot.waitSignal(page.refreshed, timeout=WAIT):
        page.refresh()
    assert page.view.is_empty() and page.view.empty_import.isVisible()
    assert "No mail imported yet" in page.view.empty_label.text()
    with qtbot.waitSignal(page.import_requested) as asked:
        page.view.empty_import.click()
    assert asked.args == [[]]


def test_tab_reaches_filter_search_list_and_pane_and_keys_move_through_messages(qtbot, stored, tmp_path):
    window = MainWindow(str(stored), settings=QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat),
                        wizard_on_first_start=False)  # fmt: skip
    qtbot.addWidget(window)
    window.show()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    view = window.mail.view
    qtbot.waitUntil(lambda: view.pane.shown is not None, timeout=WAIT)
    view.kind.setFocus()
    for widget in (view.search, view.table, view.pane):
        qtbot.keyClick(window.focusWidget(), Qt.Key.Key_Tab)
        assert window.focusWidget() is widget
    qtbot.keyClick(view.pane, Qt.Key.Key_Escape)  # back to the list
    assert window.focusWidget() is view.table
    first = view.pane.shown["id"]
    qtbot.keyClick(view.table, Qt.Key.Key_Down)
    second = view.model.rows[1]["id"]
    qtbot.waitUntil(lambda: view.pane.shown["id"] == second, timeout=WAIT)
    qtbot.keyClick(view.table, Qt.Key.Key_Up)
    qtbot.waitUntil(lambda: view.pane.shown["id"] == first, timeout=WAIT)
    qtbot.keyClick(view.table, Qt.Key.Key_Return)  # Enter reads the message: into the pane
    assert window.focusWidget() is view.pane
    view.search.setFocus()
    qtbot.keyClick(view.search, Qt.Key.Key_Down)  # from the search to the list
    assert window.focusWidget() is view.table
    view.search.setFocus()
    qtbot.keyClicks(view.search, "lease")
    with qtbot.waitSignal(view.model.page_loaded, timeout=WAIT):
        qtbot.keyClick(view.search, Qt.Key.Key_Return)  # searches at once, without waiting for a pause
        assert view.model.query == "lease" and not view.timer.isActive()
    assert window.focusWidget() is view.table and view.model.rows


def header_text(pane) -> str:
    """The pane's text with each header field on one line ("Folder: Inbox")."""
    return pane.toPlainText().replace(": \n", ": ")


def _frame_text(frame: QTextFrame) -> str:
    cursor = frame.firstCursorPosition()
    cursor.setPosition(frame.lastPosition(), cursor.MoveMode.KeepAnchor)
    return cursor.selection().toPlainText()
