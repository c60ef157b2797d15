"""The desktop window: every page builds and is reachable by keyboard, the first start opens the import wizard,
window state is remembered, and the Mail page shows what is stored (Compose: test_gui_compose.py)."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import mailgen as gen
import pytest
from PySide6.QtCore import QMimeData, QPointF, QSettings, QSize, Qt, QUrl
from PySide6.QtGui import QAction, QCloseEvent, QDropEvent, QImage, QKeySequence
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractScrollArea,
    QApplication,
    QDialog,
    QLabel,
    QMessageBox,
    QWidget,
)

from assistant.drafting.drafts import list_drafts
from assistant.errors import Cancelled, MailvoiceError
from assistant.gui import tasks
from assistant.gui.about import ICON_PNG, ICON_SVG, app_icon, render_png
from assistant.gui.app import COMPOSE, DRAFTS, MAIL, PAGES, SETTINGS, TRAIN, MainWindow, startup_root
from assistant.gui.compose import ComposePage
from assistant.gui.drafts_page import DraftsPage
from assistant.gui.inbox_page import InboxPage
from assistant.gui.mail_page import MailPage
from assistant.gui.settings_page import SettingsPage
from assistant.gui.unsaved import CANCEL, SAVE
from assistant.gui.wizard import ImportWizard
from assistant.identities import load_me
from assistant.importer import import_paths
from assistant.store import open_store


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


def test_every_page_builds_and_ctrl_1_to_6_reach_them(qtbot, imported, settings):
    window = make_window(qtbot, imported, settings)
    window.show()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)  # shortcuts work in the active window
    kinds = [MailPage, QWidget, ComposePage, DraftsPage, InboxPage, SettingsPage]
    assert [window.nav.item(i).text() for i in range(window.nav.count())] == list(PAGES)
    for i in (2, 5, 4, 3, 1, 0):
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


# -- quitting ----------------------------------------------------------------------------------------------


class WindowSystemClose(QCloseEvent):
    """The close the title bar's button sends: from the window system, so spontaneous."""

    def spontaneous(self) -> bool:
        return True


def quit_box(window: MainWindow) -> QMessageBox | None:
    box = getattr(window, "quit_box", None)
    return box if box is not None and box.isVisible() else None


def press_ctrl_q(qtbot, window: MainWindow) -> None:
    qtbot.keyClick(window.focusWidget() or window, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)


def click(box: QMessageBox, text: str) -> None:
    next(b for b in box.buttons() if b.text().replace("&", "") == text).click()


def test_ctrl_q_with_nothing_to_lose_quits_at_once(qtbot, imported, settings):
    window = make_window(qtbot, imported, settings)
    window.show()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    assert window.quit_question() == ""
    press_ctrl_q(qtbot, window)
    assert not window.isVisible() and quit_box(window) is None


def test_ctrl_q_during_a_pairs_build_asks_first_and_cancel_keeps_it_running(qtbot, data_home, settings, tmp_path):
    from test_gui_status import start_pairs_build

    window = make_window(qtbot, data_home, settings, wizard_on_first_start=False)
    window.show()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    start_pairs_build(qtbot, window, data_home, tmp_path)
    window.nav.setCurrentRow(DRAFTS)
    press_ctrl_q(qtbot, window)
    assert window.isVisible()  # asked, not gone
    box = quit_box(window)
    assert box.text().startswith("Training pairs are being built: ") and "every finished pair is kept" in box.text()
    assert box.defaultButton() is box.button(QMessageBox.StandardButton.Cancel)  # Enter keeps everything
    click(box, "Cancel")
    assert window.isVisible() and window.train.pairs.building
    press_ctrl_q(qtbot, window)
    click(quit_box(window), "Quit")
    assert not window.isVisible() and not window.train.pairs.building  # quitting stopped the build


def test_the_title_bars_close_button_asks_too_and_a_close_from_code_does_not(qtbot, imported, settings, tmp_path):
    window = make_window(qtbot, imported, settings, home=tmp_path)
    window.show()
    box_file = tmp_path / "more.mbox"
    gen.write_mbox(box_file, gen.generate_messages(400, seed=7))
    wizard = window.open_import_wizard([str(box_file)])
    wizard.next()
    qtbot.waitUntil(wizard.preview_page.isComplete, timeout=30_000)
    wizard.next()
    event = WindowSystemClose()
    window.closeEvent(event)
    assert not event.isAccepted() and window.isVisible()
    assert quit_box(window).text().startswith("An import is running. Quitting stops it; the mail imported so far")
    window.closeEvent(WindowSystemClose())  # asked once, not twice
    assert len([b for b in window.findChildren(QMessageBox) if b.isVisible()]) == 1
    click(quit_box(window), "Cancel")
    assert wizard.import_page.running() or wizard.report is not None
    window.close()  # from code (tests, the screenshot tool): already decided, nothing asked
    assert not window.isVisible() and quit_box(window) is None


@pytest.mark.skipif(not hasattr(ComposePage, "has_unsaved_text"), reason="Compose cannot tell unsaved text yet")
def test_unsaved_text_in_compose_is_asked_about_before_quitting(qtbot, imported, settings):
    window = make_window(qtbot, imported, settings)
    window.show()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    window.nav.setCurrentRow(COMPOSE)
    qtbot.keyClicks(window.compose.output, "Dear Rosa, a note I typed myself.")
    window.nav.setCurrentRow(MAIL)
    asked = []
    window.compose.ask = lambda _parent, text: asked.append(text) or CANCEL
    press_ctrl_q(qtbot, window)
    assert asked == ["Draft 1 has text you have not saved. Save it before quitting?"]
    assert window.isVisible() and window.compose.output.toPlainText() == "Dear Rosa, a note I typed myself."
    # Save keeps the text as a draft, then the window quits (nothing else would be lost).
    window.compose.ask = lambda _parent, _text: SAVE
    press_ctrl_q(qtbot, window)
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=10_000)
    (saved,) = list_drafts(window.workspace.db)
    assert saved["text"] == "Dear Rosa, a note I typed myself."


# -- icon, About, shortcuts --------------------------------------------------------------------------------


def menu_action(window: MainWindow, menu: str, text: str) -> QAction:
    (top,) = [a for a in window.menuBar().actions() if a.text().replace("&", "") == menu]
    (action,) = [a for a in top.menu().actions() if a.text().replace("&", "") == text]
    return action


def test_the_app_has_its_icon_rendered_from_its_svg(qtbot, imported, settings, tmp_path):
    window = make_window(qtbot, imported, settings)
    assert not window.windowIcon().isNull() and not app_icon().pixmap(48, 48).isNull()
    assert ICON_SVG.is_file() and ICON_PNG.is_file()
    shipped = QImage(str(ICON_PNG)).convertToFormat(QImage.Format.Format_ARGB32)
    fresh = render_png(ICON_SVG, tmp_path / "icon.png", shipped.width())
    assert shipped.size() == fresh.size() == QSize(256, 256)
    assert shipped.pixelColor(128, 128).alpha() == 255 and shipped.pixelColor(0, 0).alpha() == 0  # a tile, not a blank

    def far(x: int, y: int) -> bool:
        colours = zip(shipped.pixelColor(x, y).getRgb(), fresh.pixelColor(x, y).getRgb(), strict=True)
        return max(abs(a - b) for a, b in colours) > 8

    differing = sum(far(x, y) for x in range(0, 256, 4) for y in range(0, 256, 4))
    assert differing < 0.01 * 64 * 64  # the PNG is the SVG's rendering (run python -m assistant.gui.about if not)


def test_help_about_names_the_version_the_licences_and_the_promise(qtbot, imported, settings):
    window = make_window(qtbot, imported, settings)
    menu_action(window, "Help", "About Mailvoice").trigger()
    (dialog,) = [d for d in window.findChildren(QDialog) if d.windowTitle() == "About Mailvoice" and d.isVisible()]
    shown = " ".join(label.text() for label in dialog.findChildren(QLabel))
    assert f"Mailvoice {metadata.version('mailvoice')}" in shown
    assert "Licence: Apache-2.0" in shown
    assert "Everything runs on this computer; nothing is sent anywhere." in shown
    rows = re.findall(r"<tr><td>(.*?)</td><td>.*?</td><td>(.*?)</td></tr>", shown)
    expected = [
        ("PySide6", "LGPL-3.0"),
        ("llama.cpp", "MIT"),
        ("PyTorch", "BSD-3-Clause"),
        ("Transformers", "Apache-2.0"),
        ("PEFT", "Apache-2.0"),
        ("SmolLM2-135M-Instruct", "Apache-2.0"),
    ]
    for part, terms in expected:
        assert [terms] == [licence for name, licence in rows if part in name], part
    dialog.reject()


def test_help_keyboard_shortcuts_lists_every_menu_shortcut(qtbot, imported, settings):
    window = make_window(qtbot, imported, settings)
    action = menu_action(window, "Help", "Keyboard shortcuts")
    action.trigger()
    (dialog,) = [d for d in window.findChildren(QDialog) if d.windowTitle() == "Keyboard shortcuts" and d.isVisible()]
    shown = " ".join(label.text() for label in dialog.findChildren(QLabel))
    native = QKeySequence.SequenceFormat.NativeText
    for keys, what in (("Ctrl+Q", "File ▸ Quit"), ("Ctrl+I", "File ▸ Import mail"), ("Ctrl+3", "Go ▸ Compose"),
                       (action.shortcut().toString(native), "Help ▸ Keyboard shortcuts")):  # fmt: skip
        assert f"<b>{QKeySequence(keys).toString(native)}</b></td><td>{what}</td>" in shown
    assert "Tab / Shift+Tab" in shown
    dialog.reject()


# -- keyboard and small screens ----------------------------------------------------------------------------


def scrolled(widget: QWidget, top: QWidget) -> bool:
    """Whether ``widget`` sits inside a scroll area below ``top`` (scrolling brings it, and focus does too)."""
    parent = widget.parentWidget()
    while parent is not None and parent is not top:
        area = parent.parentWidget()
        if isinstance(area, QAbstractScrollArea) and parent is area.viewport():
            return True
        parent = area
    return False


def clipped(widget: QWidget, top: QWidget) -> bool:
    """Whether part of ``widget`` lies outside a parent between it and ``top`` (outside a scroll area)."""
    rect, child = widget.rect(), widget
    while child is not top:
        parent = child.parentWidget()
        rect = rect.translated(child.pos())
        area = parent.parentWidget()
        if isinstance(area, QAbstractScrollArea) and parent is area.viewport():
            return False
        if not parent.rect().contains(rect):
            return True
        child = parent
    return False


def text_cut(widget: QWidget) -> bool:
    """Whether a label's or a button's text is cut short by its size."""
    if isinstance(widget, QLabel) and widget.text():
        if widget.wordWrap():
            return widget.height() < widget.heightForWidth(widget.width())
        hint = widget.minimumSizeHint()
        return widget.width() < hint.width() or widget.height() < hint.height()
    if isinstance(widget, QAbstractButton) and widget.text():
        return widget.width() < widget.minimumSizeHint().width()
    return False


def controls(page: QWidget, window: QWidget) -> list[QWidget]:
    return [w for w in page.findChildren(QWidget) if w.isVisibleTo(window) and w.isEnabled() and
            w.focusPolicy() & Qt.FocusPolicy.TabFocus and w.focusProxy() is None]  # fmt: skip


def settled(qtbot) -> None:
    """Every page's background reads have arrived (their widgets are filled in)."""
    qtbot.waitUntil(lambda: all(thread.isFinished() for thread, _worker in tasks._running), timeout=20_000)
    qtbot.wait(50)


@pytest.mark.parametrize("size", [(1024, 640), (1366, 768)])
def test_every_control_fits_and_tab_reaches_it_on_a_small_screen(qtbot, imported, settings, size):
    window = make_window(qtbot, imported, settings)
    window.resize(*size)
    window.show()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    assert (window.width(), window.height()) == size  # the pages fit: nothing forces the window larger
    for index, name in enumerate(PAGES):
        window.nav.setCurrentRow(index)
        settled(qtbot)
        page = window.stack.currentWidget()
        on_page = controls(page, window)
        assert on_page, name
        assert [w for w in on_page if clipped(w, window)] == [], f"{name}: controls outside the window"
        visible = [w for w in window.findChildren(QWidget) if w.isVisibleTo(window) and not scrolled(w, window)]
        assert [(type(w).__name__, w.text()) for w in visible if text_cut(w)] == [], f"{name}: text cut short"
        on_page[0].setFocus()
        reached = []
        for _ in range(len(controls(window, window)) + 5):  # once round the whole window, and a little more
            reached.append(QApplication.focusWidget())
            qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
        missing = [(type(w).__name__, w.objectName(), getattr(w, "text", str)()) for w in on_page if w not in reached]
        assert missing == [], f"{name}: Tab never reaches these"
        assert reached[0] in reached[1:], f"{name}: Tab does not come round again"


def _returns(progress, cancel):
    progress(1)
    return "result"


def _stopped(progress, cancel):
    raise Cancelled()


def _refused(progress, cancel):
    raise MailvoiceError("Say what to do.")


@pytest.mark.parametrize(
    ("fn", "ends_with"),
    [(_returns, ("finished", "result")), (_stopped, ("cancelled",)), (_refused, ("failed", "Say what to do."))],
)
def test_a_call_worker_ends_with_exactly_one_of_finished_cancelled_or_failed(qtbot, fn, ends_with):
    worker = tasks.CallWorker(fn)
    heard: list[tuple] = []
    worker.finished.connect(lambda result: heard.append(("finished", result)))
    worker.cancelled.connect(lambda: heard.append(("cancelled",)))
    worker.failed.connect(lambda message: heard.append(("failed", message)))
    thread = tasks.start(None, worker)
    qtbot.waitUntil(thread.isFinished, timeout=10_000)
    qtbot.waitUntil(lambda: bool(heard), timeout=10_000)
    assert heard == [ends_with]
