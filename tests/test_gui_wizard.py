"""The import wizard: sources (dialogs, drag and drop, known mail folders), preview, import, identities, summary."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import mailgen as gen
import pytest
from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QFileDialog

from assistant.gui.wizard import EMPTY_IDENTITIES, LAST_FOLDER_KEY, ImportWizard
from assistant.identities import load_me
from assistant.mail import preview as preview_module
from assistant.mail.preview import known_locations, preview
from assistant.mail.sources import iter_mbox
from assistant.store import open_store


@pytest.fixture
def mailbox(tmp_path: Path) -> Path:
    """A folder with one generated mbox (Alex Morgan's mail, hard cases included) and a file that is not mail."""
    folder = tmp_path / "mail"
    folder.mkdir()
    gen.write_mbox(folder / "All mail.mbox", gen.generate_messages(150, seed=4))
    (folder / "notes.txt").write_text("shopping list\n")
    return folder


@pytest.fixture
def wizard(qtbot, data_home, tmp_path):
    w = ImportWizard(str(data_home), home=tmp_path / "empty-home")
    qtbot.addWidget(w)
    w.show()
    return w


def go_next(qtbot, w: ImportWizard, page) -> None:
    qtbot.waitUntil(page.isComplete, timeout=60_000)
    w.next()


def test_known_mail_folders_are_found_and_offered(qtbot, data_home, tmp_path):
    home = tmp_path / "home-dir"
    (home / ".thunderbird/abc.default-release/Mail/Local Folders").mkdir(parents=True)
    (home / ".thunderbird/abc.default-release/ImapMail/imap.example.org").mkdir(parents=True)
    (home / "Library/Mail/V10").mkdir(parents=True)
    (home / "Downloads/Takeout/Mail").mkdir(parents=True)
    (home / "Documents").mkdir()
    found = {(label, p.relative_to(home).as_posix()) for label, p in known_locations(home)}
    assert found == {
        ("Thunderbird local folders", ".thunderbird/abc.default-release/Mail"),
        ("Thunderbird IMAP accounts", ".thunderbird/abc.default-release/ImapMail"),
        ("Apple Mail", "Library/Mail/V10"),
        ("Gmail Takeout", "Downloads/Takeout/Mail"),
    }
    w = ImportWizard(str(data_home), home=home)
    qtbot.addWidget(w)
    page = w.sources_page
    assert page.found.count() == 4
    apple = next(i for i in range(4) if page.found.item(i).text().startswith("Apple Mail"))
    page.found.itemDoubleClicked.emit(page.found.item(apple))
    assert page.paths() == [str(home / "Library/Mail/V10")] and page.isComplete()
    assert known_locations(tmp_path / "nobody") == []


def test_dropping_files_adds_them(wizard, mailbox):
    page = wizard.sources_page
    assert not page.isComplete()
    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(str(mailbox / "All mail.mbox")), QUrl("https://example.org/x.mbox")])
    event = QDropEvent(QPointF(5, 5), Qt.DropAction.CopyAction, data, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)  # fmt: skip
    page.dropEvent(event)
    page.dropEvent(event)  # the same file twice is listed once
    assert page.paths() == [str(mailbox / "All mail.mbox")] and page.isComplete()


def test_preview_counts_exactly_and_estimates_big_archives(tmp_path, monkeypatch):
    box = tmp_path / "big.mbox"
    gen.write_mbox(box, gen.iter_messages(3000, seed=9, hard_cases=False))
    exact = sum(1 for _ in iter_mbox(box))
    pv = preview([box])
    assert (pv.messages, pv.estimated, pv.files) == (exact, False, 1)
    assert pv.bytes == box.stat().st_size
    assert pv.first < pv.last and pv.first[:4] >= "2000"
    # The same file, sampled: 8 windows of 64 KB (about 5% of it) must land within 10%.
    monkeypatch.setattr(preview_module, "WINDOW_BYTES", 64 * 1024)
    monkeypatch.setattr(preview_module, "SAMPLE_WINDOWS", 8)
    guess = preview([box], exact_bytes=0)
    assert guess.estimated and abs(guess.messages - exact) / exact < 0.10
    assert guess.first >= pv.first and guess.last <= pv.last


def test_the_whole_wizard_imports_chooses_addresses_and_summarises(wizard, qtbot, mailbox, data_home):
    wizard.sources_page.add_paths([str(mailbox)])
    wizard.next()
    page = wizard.preview_page
    qtbot.waitUntil(page.isComplete, timeout=30_000)
    in_file = sum(1 for _ in iter_mbox(mailbox / "All mail.mbox"))
    assert page.messages.text() == f"{in_file:,}"
    assert page.dates.text().count("-") == 4 and " to " in page.dates.text()
    assert "1 files are not mail" in page.status.text()
    go_next(qtbot, wizard, page)
    assert wizard.currentPage() is wizard.import_page
    go_next(qtbot, wizard, wizard.import_page)
    report = wizard.report
    assert report.status == "done" and report.imported > 100
    assert f"{report.seen:,} messages read · " in wizard.import_page.detail.text()
    assert " messages/s" in wizard.import_page.detail.text()
    identities = wizard.identities_page.identities
    qtbot.waitUntil(wizard.identities_page.isComplete, timeout=30_000)
    proposed = identities.states()
    assert proposed[gen.ME_ADDR] is True  # adopted from the Sent folder
    assert proposed[gen.ME_ALIAS] is False  # proposed, not assumed
    why = {i.text(0): i.text(2) for i in identities.items()}
    assert why[gen.ME_ALIAS].endswith(f"same name as {gen.ME_ADDR}: probably an alias")
    db = open_store(data_home)
    before = db.execute("SELECT COUNT(*) FROM messages WHERE sent_by_me = 1").fetchone()[0]
    identities.check(gen.ME_ALIAS)
    wizard.next()
    summary = wizard.summary_page
    qtbot.waitUntil(summary.isComplete, timeout=30_000)
    assert load_me(db) == sorted([gen.ME_ADDR, gen.ME_ALIAS])
    after = db.execute("SELECT COUNT(*) FROM messages WHERE sent_by_me = 1").fetchone()[0]
    assert after > before
    assert f"<b>{after:,}</b> messages sent by you" in summary.text.text()
    assert f"<b>{report.imported:,}</b> new" in summary.text.text()
    rows = {(summary.skipped.item(i, 0).text(), summary.skipped.item(i, 1).text())
            for i in range(summary.skipped.rowCount())}  # fmt: skip
    assert rows == {(s.where, s.reason) for s in report.skipped}
    assert any(where.endswith("notes.txt") and reason.startswith("not mail") for where, reason in rows)
    stored = db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    assert stored == report.imported


def test_the_date_filter_reaches_the_importer(wizard, qtbot, mailbox, data_home):
    wizard.sources_page.add_paths([str(mailbox / "All mail.mbox")])
    wizard.next()
    page = wizard.preview_page
    qtbot.waitUntil(page.isComplete, timeout=30_000)
    assert not page.since.isEnabled()
    page.since_box.setChecked(True)
    page.since.setDate(dt.date(2023, 1, 1))
    assert page.date_range() == (dt.date(2023, 1, 1), None)
    go_next(qtbot, wizard, page)
    qtbot.waitUntil(wizard.import_page.isComplete, timeout=60_000)
    assert wizard.report.outside_dates > 10
    dates = [r[0] for r in open_store(data_home).execute("SELECT date FROM messages WHERE date IS NOT NULL")]
    assert dates and min(dates) >= "2023-01-01"


def test_stop_cancels_the_import_and_the_summary_says_so(wizard, qtbot, mailbox, data_home):
    wizard.sources_page.add_paths([str(mailbox / "All mail.mbox")])
    wizard.next()
    go_next(qtbot, wizard, wizard.preview_page)
    wizard.import_page.stop_button.click()  # polled after each message: stops within the first batch
    qtbot.waitUntil(wizard.import_page.isComplete, timeout=60_000)
    assert wizard.report.status == "cancelled"
    assert wizard.import_page.status.text().startswith("Stopped")
    stored = open_store(data_home).execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    assert stored < 100
    wizard.next()
    qtbot.waitUntil(wizard.identities_page.isComplete, timeout=30_000)
    wizard.next()
    qtbot.waitUntil(wizard.summary_page.isComplete, timeout=30_000)
    assert "import the same mail again to continue" in wizard.summary_page.text.text()


def test_closing_the_wizard_stops_a_running_import(wizard, qtbot, mailbox):
    wizard.sources_page.add_paths([str(mailbox / "All mail.mbox")])
    wizard.next()
    go_next(qtbot, wizard, wizard.preview_page)
    assert wizard.import_page.running()
    wizard.reject()
    assert not wizard.import_page.running() and not wizard.isVisible()


def test_a_file_without_mail_is_explained_and_cannot_be_imported(wizard, qtbot, tmp_path):
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(64) + bytes(range(256)) * 8)
    wizard.sources_page.add_paths([str(tmp_path / "photo.jpg")])
    wizard.next()
    page = wizard.preview_page
    qtbot.waitUntil(lambda: page.result is not None, timeout=30_000)
    assert not page.isComplete()
    assert page.status.text().startswith("No mail found (binary file, not mail)")
    assert "Go back and choose an mbox file" in page.status.text()


def to_identities(qtbot, w: ImportWizard, mailbox: Path) -> None:
    w.sources_page.add_paths([str(mailbox / "All mail.mbox")])
    w.next()
    go_next(qtbot, w, w.preview_page)
    go_next(qtbot, w, w.import_page)
    qtbot.waitUntil(w.identities_page.isComplete, timeout=30_000)


def test_enter_in_another_address_adds_it_and_stays_on_the_page(wizard, qtbot, mailbox):
    to_identities(qtbot, wizard, mailbox)
    identities = wizard.identities_page.identities
    identities.extra.setFocus()
    qtbot.keyClicks(identities.extra, "me@work.example")
    qtbot.keyClick(identities.extra, Qt.Key.Key_Return)
    assert identities.states()["me@work.example"] is True and identities.extra.text() == ""
    assert wizard.currentPage() is wizard.identities_page  # not on to the summary
    qtbot.keyClicks(identities.extra, "second@work.example")
    qtbot.keyClick(identities.extra, Qt.Key.Key_Enter)  # the keypad's Enter too
    assert "second@work.example" in identities.states() and wizard.currentPage() is wizard.identities_page


def test_an_empty_identities_page_says_why_and_what_to_do(wizard, qtbot, tmp_path):
    news = tmp_path / "news"
    news.mkdir()
    with open(news / "All mail.mbox", "w") as f:  # only a shop's newsletters: nobody here is the user
        for i in range(5):
            f.write(
                f"From MAILER-DAEMON Mon Jan  1 00:00:00 2024\nFrom: Shop News <no-reply@shop.example>\n"
                f"To: someone@home.example\nSubject: Deal {i}\nDate: Mon, 1 Jan 2024 10:0{i}:00 +0000\n"
                f"Message-ID: <n{i}@shop.example>\nList-Unsubscribe: <mailto:u@shop.example>\n\nBuy {i}.\n\n"
            )
    to_identities(qtbot, wizard, news)
    identities = wizard.identities_page.identities
    assert identities.states() == {}
    assert identities.empty.isVisibleTo(wizard) and identities.empty.text() == EMPTY_IDENTITIES
    assert "none of the mail stored looks sent by you" in identities.empty.text()
    assert "Type your address below and press Enter" in identities.empty.text()
    assert identities.extra.hasFocus()  # ready to type
    qtbot.keyClicks(identities.extra, "someone@home.example")
    qtbot.keyClick(identities.extra, Qt.Key.Key_Return)
    assert identities.states() == {"someone@home.example": True} and not identities.empty.isVisibleTo(wizard)


class FileDialogs:
    """Stands in for QFileDialog's static functions: notes the folder each opens in, answers with a given choice."""

    def __init__(self, files: list[str], folder: str):
        self.files, self.folder, self.opened_in = files, folder, []

    def open_files(self, _parent, _caption, folder, _filters):
        self.opened_in.append(folder)
        return self.files, ""

    def existing_folder(self, _parent, _caption, folder):
        self.opened_in.append(folder)
        return self.folder


def test_the_file_dialogs_open_in_the_home_folder_then_where_mail_was_last_chosen(qtbot, data_home, tmp_path,
                                                                                   mailbox, monkeypatch):  # fmt: skip
    home = tmp_path / "someone"
    home.mkdir()
    settings = QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat)
    dialogs = FileDialogs([str(mailbox / "All mail.mbox")], str(mailbox))
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", dialogs.open_files)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", dialogs.existing_folder)
    first = ImportWizard(str(data_home), home=home)
    qtbot.addWidget(first)
    first.sources_page.choose_files()
    assert dialogs.opened_in == [str(home)]  # not the folder Mailvoice was started from
    assert first.sources_page.paths() == [str(mailbox / "All mail.mbox")]
    remembering = ImportWizard(str(data_home), home=home, settings=settings)
    qtbot.addWidget(remembering)
    remembering.sources_page.choose_files()
    again = ImportWizard(str(data_home), home=home, settings=settings)  # the next time, even after a restart
    qtbot.addWidget(again)
    again.sources_page.choose_folder()
    assert dialogs.opened_in[1:] == [str(home), str(mailbox)]
    again.sources_page.choose_files()
    assert dialogs.opened_in[3] == str(tmp_path)  # a folder chosen: its parent, where its siblings are
    (tmp_path / "gone").mkdir()
    settings.setValue(LAST_FOLDER_KEY, str(tmp_path / "gone"))
    (tmp_path / "gone").rmdir()
    again.sources_page.choose_files()
    assert dialogs.opened_in[4] == str(home)  # a folder since deleted: home again


def test_mbox_files_and_takeout_folders_in_downloads_are_found(tmp_path, monkeypatch):
    home = tmp_path / "person"
    downloads = home / "Downloads"
    (downloads / "Takeout 2/Mail").mkdir(parents=True)
    (downloads / "takeout-20240101T000000Z-001/Takeout/Mail").mkdir(parents=True)
    (downloads / "Work archive.mbox").mkdir()  # Apple Mail's export: a folder
    for name in ("Inbox.mbox", "Old.MBOX", "notes.txt", "takeout-20240101T000000Z-002.zip", "mbox"):
        (downloads / name).write_text("From x\n")
    monkeypatch.setenv("HOME", str(home))  # what Path.home() reads on this system
    monkeypatch.setattr(Path, "home", classmethod(lambda _cls: home))  # ...and on any other
    found = {(label, p.relative_to(home).as_posix()) for label, p in known_locations()}
    assert found == {
        ("Gmail Takeout", "Downloads/Takeout 2/Mail"),
        ("Gmail Takeout", "Downloads/takeout-20240101T000000Z-001/Takeout/Mail"),
        ("Mail export in Downloads", "Downloads/Work archive.mbox"),
        ("mbox file in Downloads", "Downloads/Inbox.mbox"),
        ("mbox file in Downloads", "Downloads/Old.MBOX"),
    }  # no zip: the importer reads unpacked mail only
    other = tmp_path / "other"
    other.mkdir()
    (other / "Downloads").symlink_to(tmp_path / "unplugged-drive")  # a Downloads that is not there: none found
    assert known_locations(other) == [] and known_locations(tmp_path / "nobody") == []
