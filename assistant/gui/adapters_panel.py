"""The trained adapters on the Train page: their metrics, which one drafts use (Use), Evaluate, which drafts
validation emails with one and says in words how it compares with the plain model (Open report shows the
scores), and Merge, which folds one into a copy of its base model, as ``mailvoice adapters``, ``use``, ``eval``
and ``merge`` do."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from assistant.durations import format_duration
from assistant.errors import MailvoiceError
from assistant.gui import tasks
from assistant.store import adapters
from assistant.workspace import Workspace

COLUMNS = ("", "Adapter", "Trained", "Steps", "Loss", "Val. loss", "Check")
HEADER_TIPS = (
    "✓: drafts use this adapter.",
    "The adapter's name.",
    "When its training ended.",
    "Training steps taken.",
    "Training loss at the last step: lower is closer to your emails it trained on.",
    "Loss on the validation emails it never trained on: lower is closer to your mail.",
    "llama.cpp check: how often the exported adapter, as drafting runs it, picks the same next token as the "
    "trained model.",
)
NAME = 1
EVAL_LIMIT = 50  # validation emails an evaluation drafts: enough for stable scores, minutes on a CPU


def number(value: Any, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


class AdaptersPanel(QWidget):
    """Signals: adapter_changed(object) with the adapter drafts now use (a name, or None for the plain model);
    selected(object) with the selected adapter as :func:`adapters.list_adapters` gives it (None: none).

    Args:
        evaluate: the evaluation call (default: ``trainer.evaluation.evaluate``).
        open_url: opens the evaluation report (default: ``QDesktopServices.openUrl``).
        confirm: asks a yes/no question, returns the answer (default: a message box).
    """

    adapter_changed = Signal(object)
    selection = Signal(object)
    evaluating = False
    report: Path | None = None  # the last evaluation's report, for Open report
    eval_thread = None
    merging = False
    merge_thread = None

    def __init__(self, ws: Workspace | Path, evaluate: Callable[..., Any] | None = None,
                 open_url: Callable[[QUrl], Any] | None = None, parent: QWidget | None = None,
                 confirm: Callable[[str], bool] | None = None):  # fmt: skip
        super().__init__(parent)
        self.workspace = Workspace.of(ws)
        self.evaluate_fn = evaluate
        self.open_url = open_url or QDesktopServices.openUrl
        self.confirm = confirm or self._ask
        self.eval_worker: tasks.CallWorker | None = None
        self.merge_worker: tasks.CallWorker | None = None
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        for col, tip in enumerate(HEADER_TIPS):
            self.table.horizontalHeaderItem(col).setToolTip(tip)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        # The numbers keep their width; the name takes what is left (its whole text in its tooltip), so the table
        # fits the page's column without scrolling sideways.
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(NAME, QHeaderView.ResizeMode.Stretch)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.setMinimumHeight(90)
        self.table.setMaximumHeight(170)
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 8)
        self.table.itemSelectionChanged.connect(self._on_selection)
        self.table.doubleClicked.connect(lambda *_: self.use_selected())
        self.use_button = QPushButton("&Use")
        self.use_button.setToolTip("Draft with the selected adapter from now on (or double-click it).")
        self.use_button.clicked.connect(self.use_selected)
        self.plain_button = QPushButton("Use &plain model")
        self.plain_button.setToolTip("Draft with the base model alone, without any adapter.")
        self.plain_button.clicked.connect(lambda: self.use("none"))
        self.eval_button = QPushButton("E&valuate")
        self.eval_button.setToolTip(f"Draft up to {EVAL_LIMIT} validation emails with the selected adapter (none "
                                    "selected: the plain model), score them against what you really wrote, and "
                                    "say how it compares with the plain model.")  # fmt: skip
        self.eval_button.clicked.connect(self.evaluate)
        self.merge_button = QPushButton("&Merge into model")
        self.merge_button.setToolTip("Fold the selected adapter into a copy of its base model (8-bit weights where "
                                     "it changed them): drafts come at the plain model's speed; the copy is one "
                                     "more model file on disk.")  # fmt: skip
        self.merge_button.clicked.connect(self.merge_selected)
        self.status = QLabel(wordWrap=True)
        self.report_button = QPushButton("Open &report")
        self.report_button.setToolTip("Every score, with its interval, and each draft beside your real email.")
        self.report_button.clicked.connect(self.open_report)
        self.report_button.hide()
        buttons = QHBoxLayout()
        for b in (self.use_button, self.plain_button, self.eval_button, self.merge_button):
            buttons.addWidget(b)
        buttons.addStretch()
        status_row = QHBoxLayout()
        status_row.addWidget(self.status, 1)
        status_row.addWidget(self.report_button, 0, Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("<b>Your adapters</b>"))
        layout.addWidget(self.table)
        layout.addLayout(buttons)
        layout.addLayout(status_row)
        self.rows: list[dict[str, Any]] = []
        self.refresh()

    def refresh(self, select: str | None = None) -> None:
        """Read the adapters again; select ``select`` (None: no row, so Evaluate takes the plain model)."""
        found = self.rows = adapters.list_adapters(self.workspace.db)
        self.table.clearSelection()
        self.table.setRowCount(len(found))
        for row, a in enumerate(found):
            m = a["metrics"]
            parity = (m.get("parity") or {}).get("agreement")
            cells = ("✓" if a["in_use"] else "", a["name"], a["created_at"][:16].replace("T", " "),
                     str(m.get("steps") or "–"), number(m.get("train_loss")), number(m.get("eval_loss")),
                     "–" if parity is None else f"{parity:.1%}")  # fmt: skip
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if col == 0 and a["in_use"]:
                    item.setToolTip("Drafts use this adapter.")
                elif col == NAME:
                    item.setToolTip(text)
                self.table.setItem(row, col, item)
            if a["name"] == select:
                self.table.selectRow(row)
        self._update_buttons()

    def selected(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        item = self.table.item(rows[0].row(), NAME) if rows else None
        return item.text() if item else None

    def selected_adapter(self) -> dict[str, Any] | None:
        name = self.selected()
        return next((a for a in self.rows if a["name"] == name), None)

    def _on_selection(self) -> None:
        self._update_buttons()
        self.selection.emit(self.selected_adapter())

    def _update_buttons(self) -> None:
        self.use_button.setEnabled(self.selected() is not None)
        self.merge_button.setEnabled(self.selected() is not None and not self.merging)

    def use_selected(self) -> None:
        name = self.selected()
        if name:
            self.use(name)

    def use(self, name: str) -> None:
        tasks.write(self, self.workspace, lambda db: adapters.use_adapter(db, name), self._used, self.status.setText)

    def _used(self, chosen: str | None) -> None:
        self.status.setText(f"Drafts now use {chosen}." if chosen else "Drafts now use the plain model, no adapter.")
        self.refresh(select=chosen)
        self.adapter_changed.emit(chosen)

    # --- evaluation ---------------------------------------------------------------------------------------

    def evaluate(self) -> None:
        """Evaluate the selected adapter (none selected: the plain model) off the GUI thread, as ``mailvoice
        eval --limit 50`` does, and say what it found; pressed again, stop (finished drafts are kept)."""
        if self.evaluating:
            self.eval_worker.cancel()
            self.status.setText("Stopping the evaluation; the drafts made so far are kept…")
            return
        adapter, ws, given = self.selected(), self.workspace, self.evaluate_fn

        def work(progress, cancel):
            evaluate = given or _evaluation()  # imported here: the scoring libraries take a while to load
            db = ws.db
            result = evaluate(db, ws.root, adapter=adapter, examples=True, limit=EVAL_LIMIT, progress=progress,
                              cancel=cancel)  # fmt: skip
            return result, judge(db, ws.root, result, adapter)

        self.eval_worker = tasks.CallWorker(work)
        self.eval_worker.progress.connect(self.show_progress)
        self.eval_worker.finished.connect(self._on_evaluated)
        self.eval_worker.failed.connect(self._on_failed)
        self.eval_worker.cancelled.connect(self._on_eval_stopped)
        self.status.setText(f"Evaluating {adapter or 'the plain model'}: drafting up to {EVAL_LIMIT} validation "
                            "emails…")  # fmt: skip
        self.eval_button.setText("Stop e&valuating")
        self.report_button.hide()
        self.evaluating = True
        self.eval_thread = tasks.start(self, self.eval_worker)

    def show_progress(self, p: Any) -> None:
        """``trainer.evaluation.EvalProgress``: drafting counts pairs; scoring and the report come after."""
        if getattr(p, "phase", "draft") != "draft":
            self.status.setText(f"Evaluating… {p.phase}")
        elif p.total:
            left = f", about {format_duration(p.eta)} left" if p.eta is not None else ""
            self.status.setText(f"Evaluating… {p.done:,} of {p.total:,} drafted{left}")

    def _on_evaluated(self, done: tuple[Any, str]) -> None:
        self._after()
        result, verdict = done
        self.report = Path(result.html_path) if getattr(result, "html_path", None) else None
        self.status.setText(verdict)
        self.report_button.setVisible(self.report is not None)

    def open_report(self) -> None:
        """Open the last evaluation's report in the browser (a local file: nothing leaves the machine)."""
        if self.report is None:
            return
        if self.open_url(QUrl.fromLocalFile(str(self.report))) is False:
            self.status.setText(f"{self.status.text()} The report could not be opened here; it is {self.report}")

    def _on_failed(self, message: str) -> None:
        self._after()
        self.status.setText(message)

    def _on_eval_stopped(self) -> None:
        self._after()
        self.status.setText("Evaluation stopped. The drafts it wrote are kept: Evaluate continues from them.")

    def _after(self) -> None:
        self.evaluating = False
        self.eval_button.setText("E&valuate")

    # --- merging ------------------------------------------------------------------------------------------

    def merge_selected(self) -> None:
        """Merge the selected adapter into its base off the GUI thread (``mailvoice merge NAME``), then ask
        whether drafts should use the merged model."""
        name, ws = self.selected(), self.workspace
        if not name or self.merging:
            return

        def work(progress, _cancel):
            from trainer.merge import merge_into_base  # imported here: numpy and gguf take a while to load

            return merge_into_base(ws.db, name, progress=progress)

        self.merge_worker = tasks.CallWorker(work)
        self.merge_worker.progress.connect(self._merge_progress)
        self.merge_worker.finished.connect(self._on_merged)
        self.merge_worker.failed.connect(self._on_merge_failed)
        self.status.setText(f"Merging {name} into its base model…")
        self._merge_started = time.monotonic()
        self.merging = True
        self._update_buttons()
        self.merge_thread = tasks.start(self, self.merge_worker)

    def _merge_progress(self, event: Any) -> None:
        fraction = event.get("fraction") if isinstance(event, dict) else None
        if fraction is None:
            return
        elapsed = time.monotonic() - self._merge_started
        left = f", about {format_duration(elapsed * (1 - fraction) / fraction)} left" if fraction > 0.05 else ""
        self.status.setText(f"Merging… {fraction:.0%}{left}")

    def _on_merged(self, info: Any) -> None:
        self.merging = False
        self._update_buttons()
        size = f"{info.size_bytes / 1e6:,.0f} MB"
        if self.confirm(f"{info.adapter_name} is merged into {Path(info.path).name} ({size}). Draft with the "
                        "merged model from now on? It drafts at the plain model's speed."):  # fmt: skip
            def use(db: Any) -> Any:
                from trainer.merge import use_merged

                use_merged(db, info)  # checks the model file: off the GUI thread
                return info

            tasks.write(self, self.workspace, use, self._on_using_merged, self.status.setText)
        else:
            self.status.setText(f"Merged model written to {info.path}; choose it on the Settings page to draft "
                                "with it.")  # fmt: skip

    def _on_using_merged(self, info: Any) -> None:
        self.status.setText(f"Drafts now use the merged model {info.path} (the adapter is inside it).")
        self.refresh()
        self.adapter_changed.emit(None)

    def _on_merge_failed(self, message: str) -> None:
        self.merging = False
        self._update_buttons()
        self.status.setText(message)

    def _ask(self, question: str) -> bool:
        buttons = QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No
        answer = QMessageBox.question(self, "Merged", question, buttons)
        return answer == QMessageBox.StandardButton.Yes

    def shutdown(self, wait_ms: int = 30000) -> None:
        """Stop an evaluation (its finished drafts are cached: the next one continues from them); let a merge
        finish (it writes a temporary file and renames it at the end, so stopping it early saves nothing)."""
        if self.eval_worker is not None and self.eval_thread is not None and self.eval_thread.isRunning():
            self.eval_worker.cancel()
            self.eval_thread.quit()
            self.eval_thread.wait(wait_ms)
        if self.merge_thread is not None and self.merge_thread.isRunning():
            self.merge_thread.quit()
            self.merge_thread.wait(wait_ms)


def judge(db: Any, root: Path, result: Any, adapter: str | None) -> str:
    """The verdict in words on an evaluation (off the GUI thread: it reads earlier evaluations)."""
    from trainer.evaluation.verdict import plain_model_scores, verdict

    metrics = getattr(result, "metrics", None) or {}
    n = metrics.get("n")
    plain = plain_model_scores(db, root, n, True) if adapter and isinstance(n, int) else None
    return verdict(metrics, adapter, plain).text


def _evaluation() -> Callable[..., Any]:
    try:
        from trainer.evaluation import evaluate
    except ImportError as exc:
        raise MailvoiceError(f"Evaluation cannot start ({exc}); reinstall Mailvoice (make run).") from exc
    return evaluate
