"""The desktop window: every page builds and is reachable by keyboard, the first start opens the import wizard,
window state is remembered, and the Mail page shows what is stored (Compose: test_gui_compose.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDropEvent  # noqa: E402
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget  # noqa: E402

from assistant.errors import MailvoiceError  # noqa: E402
from assistant.gui import tasks  # noqa: E402
from assistant.gui.app import DRAFTS, MAIL, PAGES, SETTINGS, TRAIN, MainWindow, startup_root  # noqa: E402
from assistant.gui.compose import ComposePage  # noqa: E402
from assistant.gui.drafts_page import DraftsPage  # noqa: E402
from assistant.gui.mail_page import MailPage  # noqa: E402
from assistant.gui.settings_page import SettingsPage  # noqa: E402
from assistant.gui.wizard import ImportWizard  # noqa: E402
from assistant.identities import load_me  # noqa: E402
from assistant.importer import import_paths  # noqa: E402
from assistant.mail import generate as gen  # noqa: E402
from assistant.store import open_store  # noqa: E402


@pytest.fixture
def settings(tmp_path: Path) -> QSettings:
    """Window state in a file of this test's own, never the user's configuration."""
    return QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def imported(data_home: Path, tmp_path: Path) -> Path:
    box = tmp_path / "All mail.mbox"
    gen.write_mbox(box, gen.generate_messages(150, seed=2))
    import_paths(open_store(data_home), [box])
    return data_home


def make_window(qtbot, root, settings, **kw) -> MainWindow:
    w = MainWindow(str(root), settings=settings, **kw)
    qtbot.addWidget(w)
    return w


def test_every_page_builds_and_ctrl_1_to_5_reach_them(qtbot, imported, settings):
    window = make_window(qtbot, imported, settings)
    window.show()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)  # shortcuts work in the active window
    kinds = [MailPage, QWidget, ComposePage, DraftsPage, SettingsPage]
    assert [window.nav.item(i).text() for i in range(window.nav.count())] == list(PAGES)
    for i in (2, 4, 3, 1, 0):
        qtbot.keyClick(window.focusWidget() or window, Qt.Key(Qt.Key.Key_1 + i), Qt.KeyboardModifier.ControlModifier)
        assert window.current_page() == i and window.stack.currentIndex() == i
        page = window.stack.currentWidget()
        assert isinstance(page, kinds[i]) and page.isVisible()
    assert window.wizard is None  # mail is stored: no wizard


def test_first_start_opens_the_import_wizard(qtbot, data_home, settings, tmp_path):
    window = make_window(qtbot, data_home, settings, home=tmp_path)
    assert window.wizard is None
    window.show()
    qtbot.waitUntil(lambda: window.wizard is not None and window.wizard.isVisible(), timeout=5000)
    assert isinstance(window.wizard, ImportWizard)
    assert window.wizard.currentPage() is window.wizard.sources_page


def test_window_size_and_page_are_restored(qtbot, imported, settings):
    first = make_window(qtbot, imported, settings)
    first.show()
    first.resize(first.width(), 610)  # the offscreen screen is 800 wide: only the height is free to choose
    first.nav.setCurrentRow(DRAFTS)
    first.close()
    again = make_window(qtbot, imported, settings)
    again.show()
    assert again.height() == 610
    assert again.current_page() == DRAFTS and again.stack.currentWidget() is again.drafts
    again.showMaximized()
    qtbot.waitUntil(again.isMaximized, timeout=5000)
    again.close()
    third = make_window(qtbot, imported, settings)
    third.show()
    qtbot.waitUntil(third.isMaximized, timeout=5000)
    other = QSettings(str(Path(settings.fileName()).with_name("other.ini")), QSettings.Format.IniFormat)
    fresh = make_window(qtbot, imported, other)
    fresh.show()
    assert fresh.current_page() == MAIL and fresh.height() == 720 and not fresh.isMaximized()


def test_mail_page_shows_what_is_stored_and_saves_addresses(qtbot, imported, settings):
    window = make_window(qtbot, imported, settings)
    page = window.mail
    with qtbot.waitSignal(page.refreshed, timeout=30_000):
        page.refresh()
    db = open_store(imported)
    stored, sent = db.execute("SELECT COUNT(*), SUM(sent_by_me) FROM messages").fetchone()
    assert f"<b>{stored:,}</b> messages" in page.summary.text()
    assert f"<b>{sent:,}</b> sent by you ({gen.ME_ADDR})" in page.summary.text()
    assert page.folders.text().startswith("Folders: ")
    with qtbot.waitSignal(page.identities_applied, timeout=30_000):
        page.identities.check(gen.ME_ALIAS)  # applied at once
    with qtbot.waitSignal(page.refreshed, timeout=30_000):
        pass  # the page shows what the change did
    assert load_me(db) == sorted([gen.ME_ADDR, gen.ME_ALIAS])
    more = db.execute("SELECT SUM(sent_by_me) FROM messages").fetchone()[0]
    assert more > sent and f"<b>{more:,}</b> sent by you" in page.summary.text()


def test_dropping_mail_on_the_mail_page_opens_the_wizard_with_it(qtbot, imported, settings, tmp_path):
    window = make_window(qtbot, imported, settings, home=tmp_path)
    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(str(tmp_path / "All mail.mbox"))])
    window.mail.dropEvent(QDropEvent(QPointF(3, 3), Qt.DropAction.CopyAction, data, Qt.MouseButton.LeftButton,
                                     Qt.KeyboardModifier.NoModifier))  # fmt: skip
    assert window.wizard is not None and window.wizard.isVisible()
    assert window.wizard.sources_page.paths() == [str(tmp_path / "All mail.mbox")]
    window.wizard.reject()


def test_pages_use_the_system_palette(qtbot, imported, settings):
    """No page sets its own colours, so a dark system theme stays readable."""
    window = make_window(qtbot, imported, settings)
    widgets = [window, *window.findChildren(QWidget)]
    assert not [w for w in widgets if "color" in w.styleSheet().lower()]
    assert QApplication.instance().styleSheet() == ""


def test_forget_is_refused_while_an_import_runs(qtbot, imported, settings, tmp_path):
    window = make_window(qtbot, imported, settings, home=tmp_path)
    window.nav.setCurrentRow(SETTINGS)
    assert window.busy_reason() == ""
    box = tmp_path / "more.mbox"
    gen.write_mbox(box, gen.generate_messages(400, seed=7))
    wizard = window.open_import_wizard([str(box)])
    wizard.next()
    qtbot.waitUntil(wizard.preview_page.isComplete, timeout=30_000)
    wizard.next()
    assert window.busy_reason() == "An import is running"
    assert window.settings_page.ask_forget() is None  # an error message instead of the question
    wizard.reject()
    assert window.busy_reason() == ""


def test_forgetting_everything_empties_every_page(qtbot, imported, settings):
    window = make_window(qtbot, imported, settings)
    old_train = window.train
    window.nav.setCurrentRow(SETTINGS)
    question = window.settings_page.ask_forget()
    next(b for b in question.buttons() if b.text() == "&Forget everything").click()
    message = window.settings_page.forget_message
    qtbot.waitUntil(lambda: message.text() != "Deleting…", timeout=30_000)
    assert message.text().startswith("Deleted ")
    qtbot.waitUntil(lambda: "<b>0</b> messages" in window.mail.summary.text(), timeout=30_000)
    assert window.train is not old_train and window.stack.widget(TRAIN) is window.train
    assert open_store(imported).execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 0


def test_background_errors_become_messages(qtbot, data_home):
    owner = QWidget()
    qtbot.addWidget(owner)
    got = []

    def refuse():
        raise MailvoiceError("The disk is full. Free some space and try again.")

    tasks.call(owner, refuse, got.append, got.append)
    qtbot.waitUntil(lambda: got == ["The disk is full. Free some space and try again."], timeout=10_000)

    def bug():
        raise KeyError("oops")

    tasks.call(owner, bug, got.append)  # no failure callback: a dialog says it
    qtbot.waitUntil(lambda: owner.findChild(QMessageBox) is not None, timeout=10_000)
    box = owner.findChild(QMessageBox)
    assert box.text().startswith("Something went wrong (KeyError: 'oops')") and len(got) == 1


def test_the_data_folder_chosen_in_settings_is_used_from_the_next_start(settings, monkeypatch, tmp_path):
    settings.setValue("data_dir", str(tmp_path / "chosen"))
    assert startup_root("/given", settings) == "/given"  # --data-dir wins
    assert startup_root(None, settings) is None  # MAILVOICE_HOME (set for every test) wins
    monkeypatch.delenv("MAILVOICE_HOME")
    assert startup_root(None, settings) == str(tmp_path / "chosen")
