"""The window's status bar: a chip for every job running (a click leads to where it runs), the model and voice that
write drafts, and that Mailvoice is offline with the number of connections it refused.

The jobs and the refused count are polled (a function call and an integer, once a second), so a page need not
announce its jobs: any page with ``running_job()`` (a description, or None) gets a chip. The model and voice are
read from the store off the GUI thread when :meth:`StatusArea.refresh_model` is called.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QStatusBar, QStyle, QToolButton, QWidget

from assistant import netguard
from assistant.drafting.models import current_model
from assistant.errors import MailvoiceError
from assistant.gui import tasks
from assistant.gui.compat import keep_none_alive
from assistant.store.adapters import ADAPTER_KEY
from assistant.store.db import get_setting
from assistant.workspace import Workspace

POLL_MS = 1000
SHORT = 26  # characters of a model or voice name shown; the tooltip has it whole


@dataclass(frozen=True)
class Job:
    """Something running now.

    Attributes:
        title: a few words, for the chip and for refusing to forget the data ("Training is running").
        detail: what quitting would do to it, for the question before quitting.
        page: the page it runs on (None: the import wizard).
        place: that page's name, for the chip's tooltip.
    """

    title: str
    detail: str
    page: int | None
    place: str


def job_from(description: str, page: int | None, place: str) -> Job:
    """A job from a page's ``running_job()`` text: its first sentence, up to any colon, is the title.

    "Training pairs are being built: 12 of 40 emails labelled. Quitting stops it…" is titled "Training pairs are
    being built"; the whole text is the chip's tooltip.
    """
    first = description.split(". ", 1)[0].split(":", 1)[0].strip().rstrip(".")
    return Job(first, description, page, place)


def offline_text(installed: bool, refused: int) -> tuple[str, str]:
    """(text, tooltip) of the network part."""
    if not installed:
        return "Network guard off", "The network guard is not on; start Mailvoice with mailvoice gui to turn it on."
    count = f"{refused:,} connection{'s' * (refused != 1)} refused"
    return (f"Offline · {count}",
            f"Mailvoice works offline: connections to other machines are refused before anything is sent. "
            f"{count.capitalize()} since Mailvoice started.")  # fmt: skip


def short(name: str, width: int = SHORT) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def load_model(ws: Workspace) -> dict[str, Any]:
    """The model drafting uses and the voice (adapter) chosen, read from the store (off the GUI thread)."""
    db = ws.db
    adapter = get_setting(db, ADAPTER_KEY)
    try:
        path, source = current_model(db)
    except MailvoiceError as exc:
        return {"model": None, "path": "", "source": "", "adapter": adapter, "problem": str(exc)}
    return {"model": Path(path).stem, "path": str(path), "source": source, "adapter": adapter, "problem": ""}


def model_text(loaded: dict[str, Any]) -> tuple[str, str]:
    """(text, tooltip) of the model part."""
    voice = loaded["adapter"] or "none"
    if loaded["model"] is None:
        return f"No model · Voice: {short(voice)}", f"{loaded['problem']}\nChoose a model in Settings."
    built_in = " (built-in)" if loaded["source"] == "embedded" else ""
    text = f"Model: {short(loaded['model'])}{built_in} · Voice: {short(voice)}"
    voice_tip = f"your style, adapter {loaded['adapter']}" if loaded["adapter"] else "none (the model alone)"
    tip = f"Drafts are written by {loaded['path']}{built_in}.\nVoice: {voice_tip}.\nClick to change them in Settings."
    return text, tip


class StatusArea(QObject):
    """Fills a QStatusBar. Signals: job_clicked(object) with the :class:`Job` of a chip; model_clicked().

    Args:
        bar: the status bar to fill.
        ws: the workspace (for the model and voice).
        jobs: returns the jobs running now.
        refused: returns the number of connections refused (default: the guard's own count).
        installed: whether the guard is on (default: :func:`netguard.installed`).
    """

    job_clicked = Signal(object)
    model_clicked = Signal()

    def __init__(self, bar: QStatusBar, ws: Workspace | str, jobs: Callable[[], list[Job]], *,
                 refused: Callable[[], int] = netguard.refused_count,
                 installed: Callable[[], bool] = netguard.installed):  # fmt: skip
        super().__init__(bar)
        keep_none_alive()  # it polls for the app's whole life: see assistant.gui.compat
        self.workspace, self.jobs_fn, self.refused_fn, self.installed_fn = Workspace.of(ws), jobs, refused, installed
        self.jobs: list[Job] = []
        self.chips: list[QToolButton] = []
        self.loads = 0  # only the latest model read is shown: an older one may finish last
        self.chip_row = QWidget()
        self.chip_row.setObjectName("jobChips")
        self.chip_layout = QHBoxLayout(self.chip_row)
        self.chip_layout.setContentsMargins(0, 0, 0, 0)
        self.chip_layout.setAlignment(Qt.AlignmentFlag.AlignLeft)
        self.model = QToolButton()
        self.model.setObjectName("modelStatus")
        self.model.setAutoRaise(True)
        self.model.setText("Model: …")
        self.model.clicked.connect(self.model_clicked)
        self.offline = QLabel()
        self.offline.setObjectName("offlineStatus")
        bar.addWidget(self.chip_row, 1)
        bar.addPermanentWidget(self.model)
        bar.addPermanentWidget(self.offline)
        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self.update_now)
        self.timer.start()
        self.update_now()

    def update_now(self) -> None:
        """Read the jobs and the refused count again (the timer does this every second)."""
        text, tip = offline_text(self.installed_fn(), self.refused_fn())
        self.offline.setText(text)
        self.offline.setToolTip(tip)
        jobs = self.jobs_fn()
        if jobs != self.jobs:
            self.show_jobs(jobs)

    def show_jobs(self, jobs: list[Job]) -> None:
        """One chip per job; chips of the same jobs are kept (only their words change), so focus stays put."""
        same = [(j.title, j.page) for j in jobs] == [(j.title, j.page) for j in self.jobs]
        self.jobs = list(jobs)
        if not same:
            for chip in self.chips:
                self.chip_layout.removeWidget(chip)
                chip.hide()
                chip.deleteLater()
            self.chips = [self._chip(i) for i in range(len(jobs))]
        for chip, job in zip(self.chips, jobs, strict=True):
            chip.setText(short(job.title, 40))
            chip.setToolTip(f"{html.escape(job.detail)}<br><br>Click to go to {html.escape(job.place)}.")

    def _chip(self, index: int) -> QToolButton:
        chip = QToolButton()
        chip.setObjectName("jobChip")
        chip.setIcon(chip.style().standardIcon(QStyle.StandardPixmap.SP_BrowserReload))  # "at work", in every theme
        chip.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        chip.clicked.connect(lambda _checked=False: self.job_clicked.emit(self.jobs[index]))
        self.chip_layout.addWidget(chip)
        return chip

    def refresh_model(self) -> None:
        """Read the model and voice again (after a page changed them, or when a page is shown)."""
        ws = self.workspace
        self.loads += 1
        load = self.loads
        tasks.call(self.model, lambda: load_model(ws), lambda loaded: self.show_model(loaded, load),
                   lambda message: self.show_model_problem(message, load))  # fmt: skip

    def show_model(self, loaded: dict[str, Any], load: int | None = None) -> None:
        if load is not None and load != self.loads:
            return
        text, tip = model_text(loaded)
        self.model.setText(text)
        self.model.setToolTip(tip)

    def show_model_problem(self, message: str, load: int | None = None) -> None:
        if load is None or load == self.loads:
            self.model.setText("Model: unknown")
            self.model.setToolTip(message)
