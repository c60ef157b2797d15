"""The desktop app's entry point and main window (PySide6; the only package that imports Qt).

The window has six pages (Mail, Train, Compose, Drafts, Inbox, Settings) in a sidebar, reachable with Ctrl+1..6, and a
status bar with the jobs running, the model and voice in use, and that Mailvoice is offline. On the first start
(nothing imported yet) it opens the import wizard. Quitting (Ctrl+Q or the window's close button) asks first when
it would lose unsaved text or stop a job. Its size, position and page are remembered in QSettings; colours come
from the system's palette, so light and dark themes both work.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QHBoxLayout,
    QListWidget,
    QMainWindow,
    QMessageBox,
    QStackedWidget,
    QWidget,
)

from assistant import netguard
from assistant.drafting.backend import unload
from assistant.errors import MailvoiceError
from assistant.gui import bugs, tasks
from assistant.gui.about import about_dialog, app_icon, shortcuts_dialog
from assistant.gui.collector import GuiThreadCollector
from assistant.gui.compose import ComposePage
from assistant.gui.drafts_page import DraftsPage
from assistant.gui.inbox_page import InboxPage
from assistant.gui.mail_page import MailPage
from assistant.gui.settings_page import DATA_DIR_KEY, SettingsPage
from assistant.gui.status import Job, StatusArea, job_from
from assistant.gui.train_page import TrainPage
from assistant.gui.wizard import ImportWizard
from assistant.workspace import Workspace

PAGES = ("Mail", "Train", "Compose", "Drafts", "Inbox", "Settings")
MAIL, TRAIN, COMPOSE, DRAFTS, INBOX, SETTINGS = range(len(PAGES))


def default_settings() -> QSettings:
    """Where the window remembers itself (an ini file in the user's config folder)."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "mailvoice", "mailvoice")


def tab_leaves_tables(page: QWidget) -> None:
    """Tab moves to the next control everywhere: a table's arrow keys move between its cells, Tab leaves it.

    Qt's tables take Tab for themselves by default (to the next cell, round and round), which traps someone who
    moves through the window with the keyboard.
    """
    for view in page.findChildren(QAbstractItemView):
        view.setTabKeyNavigation(False)


class MainWindow(QMainWindow):
    """Args:
    root: the data folder (default: ``MAILVOICE_HOME`` or the platform's).
    backend_factory: makes the drafting engine (tests pass a fake).
    settings: where window state is kept (tests pass an isolated one).
    home: where the import wizard looks for Thunderbird, Apple Mail and Takeout folders.
    recorder: the network guard's recorder, for the privacy panel.
    wizard_on_first_start: open the import wizard when the window first shows and nothing is stored.
    """

    def __init__(self, root: str | None = None, backend_factory=None, *, settings: QSettings | None = None,
                 home: Path | None = None, recorder: netguard.Recorder | None = None,
                 wizard_on_first_start: bool = True):  # fmt: skip
        super().__init__()
        self.workspace = Workspace(root, check=True)
        self.workspace.db  # noqa: B018 - a damaged database is reported before anything is shown
        self.qsettings = settings if settings is not None else default_settings()
        self.home = home
        self.wizard: ImportWizard | None = None
        self.wizard_on_first_start = wizard_on_first_start
        self._shown = False
        self.quit_confirmed = False  # the person chose Quit: closing asks nothing more
        self.quit_box: QMessageBox | None = None
        self.setWindowTitle("Mailvoice")
        self.setWindowIcon(app_icon())
        self.mail = MailPage(self.workspace)
        self.train = TrainPage(self.workspace)
        self.compose = ComposePage(self.workspace, backend_factory)
        self.drafts = DraftsPage(self.workspace, backend_factory=backend_factory)
        self.inbox = InboxPage(self.workspace)
        self.settings_page = SettingsPage(self.workspace, self.qsettings, recorder=recorder, busy=self.busy_reason,
                                          release=self.release_data)  # fmt: skip
        self.nav = QListWidget()
        self.nav.setObjectName("navigation")
        self.nav.setSpacing(3)
        self.stack = QStackedWidget()
        for i, (name, page) in enumerate(zip(PAGES, self.pages(), strict=True)):
            self.nav.addItem(name)
            self.nav.item(i).setToolTip(f"{name} (Ctrl+{i + 1})")
            self.stack.addWidget(page)
        self.nav.setFixedWidth(max(130, self.nav.sizeHintForColumn(0) + 40))
        self.nav.currentRowChanged.connect(self.show_page)
        central = QWidget()
        row = QHBoxLayout(central)
        row.addWidget(self.nav)
        row.addWidget(self.stack, 1)
        self.setCentralWidget(central)
        self._menus()
        self.status = StatusArea(self.statusBar(), self.workspace, self.running_jobs)
        self.status.job_clicked.connect(self.go_to_job)
        self.status.model_clicked.connect(self.show_models)
        self.mail.import_requested.connect(self.open_import_wizard)
        self.drafts.open_in_compose.connect(self.open_draft)
        self.inbox.reply_requested.connect(self.answer_in_compose)
        self.settings_page.forgotten.connect(self.after_forget)
        self.settings_page.forget_ended.connect(self.rebuild_train)
        self.settings_page.model_changed.connect(lambda _info: self.status.refresh_model())
        models_requested = getattr(self.compose, "models_requested", None)  # Compose's model badge, where it has one
        if models_requested is not None:
            models_requested.connect(self.show_models)
        self._connect_train()
        self.restore_state()
        self.status.refresh_model()

    def pages(self) -> list[QWidget]:
        return [self.mail, self.train, self.compose, self.drafts, self.inbox, self.settings_page]

    def _menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        importing = QAction("&Import mail…", self, shortcut=QKeySequence("Ctrl+I"))
        importing.triggered.connect(lambda: self.open_import_wizard([]))
        quitting = QAction("&Quit", self, shortcut=QKeySequence("Ctrl+Q"))
        quitting.setMenuRole(QAction.MenuRole.QuitRole)
        quitting.triggered.connect(self.request_quit)
        file_menu.addActions([importing, quitting])
        go = self.menuBar().addMenu("&Go")
        for i, name in enumerate(PAGES):
            action = QAction(name, self, shortcut=QKeySequence(f"Ctrl+{i + 1}"))
            action.triggered.connect(lambda _checked=False, i=i: self.nav.setCurrentRow(i))
            go.addAction(action)
        help_menu = self.menuBar().addMenu("&Help")
        keys = QAction("&Keyboard shortcuts", self, shortcut=QKeySequence("Ctrl+/"))
        keys.triggered.connect(self.show_shortcuts)
        about = QAction("&About Mailvoice", self)
        about.setMenuRole(QAction.MenuRole.AboutRole)
        about.triggered.connect(self.show_about)
        help_menu.addActions([keys, about])

    def _connect_train(self) -> None:
        self.train.adapter_changed.connect(lambda _name: self.settings_page.refresh())
        self.train.adapter_changed.connect(lambda _name: self.status.refresh_model())

    # -- pages -------------------------------------------------------------------------------------
    def current_page(self) -> int:
        return self.nav.currentRow()

    def show_page(self, index: int) -> None:
        if index < 0:
            return
        self.stack.setCurrentIndex(index)
        tab_leaves_tables(self.pages()[index])
        refresh = getattr(self.pages()[index], "refresh", None)
        if callable(refresh):
            refresh()
        self.status.refresh_model()  # a page may have changed the model or the voice

    def show_models(self) -> None:
        """Where the model and voice are chosen: the Models panel in Settings (brought into view when it has one)."""
        self.nav.setCurrentRow(SETTINGS)
        show = getattr(self.settings_page, "show_models", None)
        if callable(show):
            show()

    def go_to_job(self, job: Job) -> None:
        """A job's chip was clicked: its page, or the import wizard."""
        if job.page is not None:
            self.nav.setCurrentRow(job.page)
        elif self.wizard is not None and self.wizard.isVisible():
            self.wizard.raise_()
            self.wizard.activateWindow()

    def show_about(self) -> QWidget:
        dialog = about_dialog(self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def show_shortcuts(self) -> QWidget:
        dialog = shortcuts_dialog(self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def open_draft(self, row: dict[str, Any]) -> None:
        """Put a saved draft back into Compose: its request, the email it answers, and its text to edit."""
        self.compose.open_draft(row)
        self.nav.setCurrentRow(COMPOSE)

    def answer_in_compose(self, row: dict[str, Any]) -> None:
        """Answer a stored email in Compose (the Inbox's Draft a reply): it becomes the email the draft answers."""
        if self.compose.writing:
            self.inbox.status.setText("Compose is writing a draft: let it finish or stop it, then Draft a reply.")
            return
        self.compose.choose_reply(row)
        self.nav.setCurrentRow(COMPOSE)

    def open_import_wizard(self, paths: list[str] | None = None) -> ImportWizard:
        if self.wizard is not None and self.wizard.isVisible():
            self.wizard.sources_page.add_paths(paths or [])
            self.wizard.raise_()
            return self.wizard
        self.wizard = ImportWizard(self.workspace, home=self.home, paths=paths or [], parent=self,
                                   settings=self.qsettings)
        self.wizard.finished.connect(self.after_import)
        self.wizard.open()
        return self.wizard

    def after_import(self, _result: int) -> None:
        self.nav.setCurrentRow(MAIL)
        self.mail.refresh()

    def release_data(self) -> None:
        """Before everything is deleted: the Train page, which keeps the database open, stops."""
        self.train.shutdown()

    def rebuild_train(self) -> None:
        """A new Train page on the (now new) database; the stopped one goes."""
        old, self.train = self.train, TrainPage(self.workspace)
        self.stack.insertWidget(TRAIN, self.train)
        self.stack.removeWidget(old)
        old.deleteLater()
        self._connect_train()
        if self.current_page() == TRAIN:
            self.stack.setCurrentIndex(TRAIN)

    def after_forget(self) -> None:
        self.mail.refresh()
        self.drafts.refresh()
        self.inbox.refresh()

    def running_jobs(self) -> list[Job]:
        """Every job running now, with the page it runs on: the import, and what each page says it runs."""
        jobs = []
        if self.wizard is not None and self.wizard.import_page.running():
            jobs.append(Job("An import is running", "An import is running. Quitting stops it; the mail imported so "
                            "far is kept, and importing the same mail again continues where it stopped.", None,
                            "the import window"))  # fmt: skip
        for index, page in enumerate(self.pages()):
            described = getattr(page, "running_job", None)
            description = (described() if callable(described) else None) or self._job_without_description(index)
            if description:
                jobs.append(job_from(description, index, f"the {PAGES[index]} page"))
        return jobs

    def _job_without_description(self, index: int) -> str | None:
        """What a page that does not describe its jobs runs: Compose's draft, training's thread in its last moment."""
        if index == COMPOSE and self.compose.thread is not None and self.compose.thread.isRunning():
            return "A draft is being written. Quitting stops it before it is finished."
        thread = self.train.train_thread
        if index == TRAIN and thread is not None and thread.isRunning():
            return "Training is running. Quitting stops it."
        return None

    def busy_reason(self) -> str:
        """What is running now that deleting the data would break ("" when nothing)."""
        jobs = self.running_jobs()
        return jobs[0].title if jobs else ""

    def quit_question(self, compose: bool = True) -> str:
        """What quitting now would lose or stop, one paragraph each ("" when nothing: then it quits at once);
        ``compose=False`` leaves out Compose's unsaved text (its own Save / Discard / Cancel settled it)."""
        lines = []
        unsaved = getattr(self.compose, "has_unsaved_text", None)
        if compose and callable(unsaved) and unsaved():
            lines.append("Compose has text you have not saved. Quitting loses it: press Cancel, then save it in "
                         "Compose.")  # fmt: skip
        lines += [job.detail for job in self.running_jobs()]
        return "\n\n".join(lines)

    def request_quit(self) -> QMessageBox | None:
        """Ctrl+Q, and the window's close button: quit at once when nothing would be lost, else ask. Unsaved text
        in Compose is asked about first with Save / Discard / Cancel (Save keeps it as a draft); then running jobs
        with Quit / Cancel."""
        leave = getattr(self.compose, "confirm_leave", None)
        if callable(leave) and not leave():
            return None  # Cancel, or a save that failed (Compose says why): the window stays
        question = self.quit_question(compose=not callable(leave))
        if not question:
            self.quit_now()
            return None
        if self.quit_box is None:
            self.quit_box = tasks.confirm(self, "Quit Mailvoice", question, "&Quit", self.quit_now)
            self.quit_box.finished.connect(lambda _result: setattr(self, "quit_box", None))
        self.quit_box.raise_()
        return self.quit_box

    def quit_now(self) -> None:
        self.quit_confirmed = True
        self.close()

    # -- window state ------------------------------------------------------------------------------
    def restore_state(self) -> None:
        geometry = self.qsettings.value("window/geometry")
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1100, 720)
        state = self.qsettings.value("window/state")
        if state is not None:
            self.restoreState(state)
        page = int(self.qsettings.value("window/page", MAIL))
        self.nav.setCurrentRow(page if 0 <= page < len(PAGES) else MAIL)

    def save_state(self) -> None:
        self.qsettings.setValue("window/geometry", self.saveGeometry())
        self.qsettings.setValue("window/state", self.saveState())
        self.qsettings.setValue("window/page", self.current_page())
        self.qsettings.sync()

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        if not self._shown:
            self._shown = True
            if self.wizard_on_first_start and self.first_start():
                QTimer.singleShot(0, lambda: self.open_import_wizard([]))

    def first_start(self) -> bool:
        return self.workspace.db.execute("SELECT 1 FROM messages LIMIT 1").fetchone() is None

    def shutdown(self) -> None:
        """Stop background work: an import (kept so far), a draft, training's own threads."""
        if self.wizard is not None and self.wizard.isVisible():
            self.wizard.finished.disconnect(self.after_import)
            self.wizard.done(0)
        self.compose.shutdown()
        self.train.shutdown()
        self.inbox.shutdown()
        tasks.wait_all()
        tasks.writer(self.workspace).close()  # every write asked for is done before the window goes

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        # The window system's close (the title bar's button, Alt+F4) asks as Ctrl+Q does. A close from code (tests,
        # the screenshot tool, Quit itself) does not: it was decided already.
        if event.spontaneous() and not self.quit_confirmed and self.quit_question():
            event.ignore()
            self.request_quit()
            return
        self.save_state()
        self.shutdown()
        super().closeEvent(event)


def startup_root(root: str | None, settings: QSettings) -> str | None:
    """The data folder for this start: ``--data-dir``, else ``MAILVOICE_HOME``, else the one chosen in Settings."""
    if root is None and not os.environ.get("MAILVOICE_HOME"):
        return settings.value(DATA_DIR_KEY) or None
    return root


def run(root: str | None = None, argv: list[str] | None = None) -> int:
    app = QApplication.instance() or QApplication(argv or sys.argv)
    app.setApplicationName("Mailvoice")
    app.setWindowIcon(app_icon())
    settings = default_settings()
    root = startup_root(root, settings)
    guard = netguard.recording() if netguard.installed() else contextlib.nullcontext()
    collector = GuiThreadCollector(app)  # garbage holding widgets is freed on this thread, never in a worker
    try:
        with guard as recorder:
            try:
                window = MainWindow(root, settings=settings, recorder=recorder)
            except MailvoiceError as exc:
                QMessageBox.critical(None, "Mailvoice", str(exc))
                return 1
            previous = bugs.install(lambda: window)  # an error no page caught: shown as a bug with its report
            window.show()
            code = app.exec()
            sys.excepthook = previous
            window.shutdown()
    finally:
        collector.stop()
    unload()  # free llama.cpp while Qt and Python are still whole: freeing it at interpreter exit crashes
    return code


def main() -> None:
    netguard.install()  # before anything can open a connection: Mailvoice works offline
    sys.exit(run())
