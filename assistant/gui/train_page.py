"""The Train page: the training set, what this machine can train, Train on my style, progress with a live
loss chart, cancel and resume, the trained adapters (use one, evaluate one).

Training runs in its own process (:class:`trainer.process.TrainingProcess`, followed by a thread), so a crash
or running out of memory ends that process and never the app. Cancelling writes a checkpoint; Resume
continues the last stopped run. The same headless calls as ``mailvoice train/adapters/use/eval`` do the work.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEventLoop, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QProgressBar,
    QProgressDialog,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from assistant.cli.common import format_duration
from assistant.errors import MailvoiceError
from assistant.gui import tasks
from assistant.gui.compat import keep_none_alive
from assistant.gui.loss_chart import LossChart
from assistant.gui.pairs_panel import BackendFactory, PairsPanel
from assistant.gui.workers import CallWorker, ProcessFactory, TrainingWorker
from assistant.paths import data_dir
from assistant.store import open_store
from trainer import jobs, registry
from trainer.config import TrainConfig
from trainer.data import Example, from_rows, load_examples
from trainer.metrics import MetricsLog
from trainer.preflight import Preflight

PreflightFn = Callable[[Path, TrainConfig, list[Example]], Preflight]  # jobs.run_preflight
SHOWN_SCORES = ("bleu", "chrf", "rouge_l", "mauve", "length_ratio", "verbatim_overlap")  # the report has the rest
EVAL_LIMIT = 50  # validation emails an evaluation drafts: enough for stable scores, minutes on a CPU
ADAPTER_COLUMNS = ("", "Adapter", "Trained", "Steps", "Train loss", "Validation loss", "llama.cpp check")


def check_machine(
    root: Path, preflight: PreflightFn = jobs.run_preflight, examples: list[Example] | None = None
) -> Preflight:
    """Preflight for the saved settings and ``examples`` (default: the included pairs); off the GUI thread."""
    db = open_store(root)
    return preflight(root, jobs.resolve_config(db), load_examples(db) if examples is None else examples)


def new_training_run(root: Path, preflight: PreflightFn = jobs.run_preflight, fake: dict | None = None) -> Path:
    """What ``mailvoice train`` does before it starts the process: settings, pairs, preflight, run folder."""
    db = open_store(root)
    cfg = jobs.resolve_config(db)
    examples = jobs.training_examples(db)
    return jobs.prepare_run(db, root, cfg, examples, preflight(root, cfg, examples), fake=fake)


def _num(value: Any, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _stopped_at(run_dir: Path) -> int | None:
    """The step a resume continues from: the last checkpoint logged, else the step the run stopped at."""
    try:
        steps = [e["step"] for e in MetricsLog(run_dir / "metrics.jsonl").read() if e["event"] == "checkpoint"]
    except (OSError, ValueError, KeyError):
        steps = []
    if steps:
        return int(steps[-1])
    result = (jobs.read_status(run_dir).get("result") or {}).get("result") or {}
    return result.get("steps")


def failure_message(final: dict[str, Any], run_dir: Path | None) -> str:
    """What to tell a person when the training process failed or died, and what they can do next."""
    log = run_dir / "worker.log" if run_dir else "the run folder's worker.log"
    message = final.get("message") or "The training process ended without a word."
    if final.get("event") == "crashed":
        return (f"{message} Close other programs or train on a smaller base, then press Resume to continue from "
                f"the last checkpoint. Details: {log}")  # fmt: skip
    if final.get("kind") == "bug":
        return f"Training failed ({message}). Press Resume to try again from the last checkpoint. Details: {log}"
    return f"Training stopped: {message}"


class TrainPage(QWidget):
    """Signals: adapter_changed(object) with the adapter drafting now uses (a name, or None for none).

    Args:
        root: the data folder.
        preflight: ``(root, cfg, examples) -> Preflight`` (default: this machine, :func:`jobs.run_preflight`).
        prepare: ``root -> run folder`` for a new run (default: :func:`new_training_run`).
        process_factory: ``(run_dir, resume) -> process`` like :class:`trainer.process.TrainingProcess`.
        backend_factory: ``db -> Backend`` that writes pair instructions (default: llama.cpp on the chosen model).
        evaluate: the evaluation call (default: ``trainer.evaluation.evaluate``).
        open_url: opens the evaluation report (default: ``QDesktopServices.openUrl``).
    """

    adapter_changed = Signal(object)

    def __init__(self, root: str, parent: QWidget | None = None, *, preflight: PreflightFn | None = None,
                 prepare: Callable[[Path], Path] | None = None, process_factory: ProcessFactory | None = None,
                 backend_factory: BackendFactory | None = None, evaluate: Callable[..., Any] | None = None,
                 open_url: Callable[[QUrl], Any] | None = None):  # fmt: skip
        super().__init__(parent)
        keep_none_alive()  # a training run makes tens of thousands of Qt calls: see assistant.gui.compat
        self.root = data_dir(root)
        self.db = open_store(self.root)
        self.preflight_fn = preflight or jobs.run_preflight
        self.prepare_fn = prepare or (lambda r: new_training_run(r, self.preflight_fn))
        self.process_factory = process_factory or _training_process
        self.evaluate_fn = evaluate
        self.open_url = open_url or QDesktopServices.openUrl
        self.verdict: Preflight | None = None
        self.run_dir: Path | None = None
        self.train_thread = self.check_thread = self.eval_thread = None
        self.train_worker: TrainingWorker | None = None
        self.check_worker: CallWorker | None = None
        self.eval_worker: CallWorker | None = None
        self._registered: set[Path] = set()
        self.pairs = PairsPanel(str(self.root), backend_factory)
        self.pairs.changed.connect(self._on_pairs_changed)
        self.pairs.message.connect(self.show_message)
        self._build_widgets()
        self._layout()
        self.refresh_adapters()
        self._show_resumable()  # the verdict follows once the pairs are read (their size sets the time)

    # --- building the page ------------------------------------------------------------------------------------

    def _build_widgets(self) -> None:
        self.verdict_label = QLabel("Checking what this machine can train…", wordWrap=True)
        self.check_button = QPushButton("Check &again")
        self.check_button.clicked.connect(self.check_again)
        self.train_button = QPushButton("Train on my &style")
        self.train_button.setDefault(True)
        self.train_button.clicked.connect(self.train)
        self.cancel_button = QPushButton("&Cancel training")
        self.cancel_button.setToolTip("Stops after the current step with a checkpoint; Resume continues it.")
        self.cancel_button.clicked.connect(self.cancel)
        self.resume_button = QPushButton("&Resume")
        self.resume_button.clicked.connect(self.resume)
        self.resume_label = QLabel(wordWrap=True)
        self.hint = QLabel(wordWrap=True)  # why the Train button is off, when it is
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.progress_label = QLabel(wordWrap=True)
        self.status = QLabel(wordWrap=True)
        self.chart = LossChart()
        self.adapters = QTableWidget(0, len(ADAPTER_COLUMNS))
        self.adapters.setHorizontalHeaderLabels(ADAPTER_COLUMNS)
        self.adapters.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.adapters.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.adapters.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.adapters.verticalHeader().hide()
        self.adapters.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.adapters.horizontalHeader().setStretchLastSection(True)
        self.adapters.setMinimumHeight(90)
        self.adapters.setMaximumHeight(170)
        self.adapters.verticalHeader().setDefaultSectionSize(self.adapters.fontMetrics().height() + 8)
        self.adapters.itemSelectionChanged.connect(self._update_buttons)
        self.adapters.doubleClicked.connect(lambda *_: self.use_selected())
        self.use_button = QPushButton("&Use")
        self.use_button.setToolTip("Draft with the selected adapter from now on.")
        self.use_button.clicked.connect(self.use_selected)
        self.plain_button = QPushButton("Use &plain model")
        self.plain_button.setToolTip("Draft with the base model alone, without any adapter.")
        self.plain_button.clicked.connect(lambda: self.use("none"))
        self.eval_button = QPushButton("E&valuate")
        self.eval_button.setToolTip(f"Draft up to {EVAL_LIMIT} validation emails with the selected adapter (none "
                                    "selected: the plain model), score them against what you really wrote, and "
                                    "open the report.")  # fmt: skip
        self.eval_button.clicked.connect(self.evaluate)
        self.eval_status = QLabel(wordWrap=True)

    def _layout(self) -> None:
        column = QVBoxLayout()
        column.addWidget(QLabel("<b>This machine</b>"))
        column.addWidget(self.verdict_label)
        row = QHBoxLayout()
        for b in (self.train_button, self.cancel_button, self.check_button):
            row.addWidget(b)
        row.addWidget(self.hint, 1)
        column.addLayout(row)
        resume_row = QHBoxLayout()
        resume_row.addWidget(self.resume_label, 1)
        resume_row.addWidget(self.resume_button)
        column.addLayout(resume_row)
        column.addWidget(self.bar)
        column.addWidget(self.progress_label)
        column.addWidget(self.status)
        column.addWidget(self.chart, 1)
        column.addWidget(QLabel("<b>Your adapters</b>"))
        column.addWidget(self.adapters)
        buttons = QHBoxLayout()
        for b in (self.use_button, self.plain_button, self.eval_button):
            buttons.addWidget(b)
        buttons.addStretch()
        column.addLayout(buttons)
        column.addWidget(self.eval_status)
        column.setContentsMargins(0, 0, 0, 0)
        right = QWidget()
        right.setLayout(column)
        split = QSplitter()
        split.addWidget(self.pairs)
        split.addWidget(right)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        split.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.addWidget(split)

    # --- state --------------------------------------------------------------------------------------------

    # Busy flags, not QThread.isRunning(): a thread quits only after the slots of its last signal ran.
    training = evaluating = checking = closing = _recheck = False
    stopping_dialog: QProgressDialog | None = None  # shown while closing waits for a step to end

    def _update_buttons(self) -> None:
        has_pairs = any(p.status == "ok" and p.split == "train" for p in self.pairs.model.pairs)
        refused = self.verdict is not None and not self.verdict.ok
        self.train_button.setEnabled(not self.training and has_pairs and not refused)
        why = ("Build pairs first: training learns from them." if not has_pairs else
               "This machine cannot train these settings; see above." if refused else "")  # fmt: skip
        self.train_button.setToolTip(why)
        self.hint.setText(why)
        self.cancel_button.setVisible(self.training)
        self.bar.setVisible(self.training)
        resumable = None if self.training else jobs.resumable_run(self.root)
        self.resume_button.setVisible(resumable is not None)
        self.resume_label.setVisible(resumable is not None)
        self.resume_button.setEnabled(not refused)
        chosen = self._selected_adapter()
        self.use_button.setEnabled(chosen is not None)

    def busy(self) -> str:
        """What this page is doing that closing or deleting the data would interrupt ("" when nothing)."""
        if self.training:
            return "Training is running"
        if self.pairs.building:
            return "Pairs are being built"
        if self.evaluating:
            return "An evaluation is running"
        return ""

    def show_message(self, text: str) -> None:
        self.status.setText(text)

    # --- preflight -----------------------------------------------------------------------------------------

    def _on_pairs_changed(self) -> None:
        self._update_buttons()
        self.check_again()

    def check_again(self) -> None:
        """Run preflight again (off the GUI thread) on the pairs as the table has them."""
        if self.closing:
            return
        if self.checking or self.pairs.loading:
            self._recheck = not self.pairs.loading  # after loading, the pairs' changed() asks again
            return
        self.checking, self._recheck = True, False
        root, fn = self.root, self.preflight_fn
        try:  # what training_rows gives training, without scrubbing every pair a second time
            examples = from_rows(
                {"instruction": p.instruction, "input": p.input, "output": p.output, "split": p.split}
                for p in self.pairs.model.pairs
                if p.status == "ok"
            )
        except MailvoiceError as exc:
            self._on_verdict_failed(str(exc))
            return
        self.check_worker = CallWorker(lambda _progress, _cancel: check_machine(root, fn, examples))
        self.check_worker.finished.connect(self._on_verdict)
        self.check_worker.failed.connect(self._on_verdict_failed)
        self.check_button.setEnabled(False)
        self.check_thread = tasks.start(self, self.check_worker)

    def _on_verdict(self, pf: Preflight) -> None:
        self.verdict = pf
        self.verdict_label.setText(verdict_html(pf))
        self._checked()

    def _on_verdict_failed(self, message: str) -> None:
        self.verdict = None
        self.verdict_label.setText(f"<span style='color:#b00020'>{_escape(message)}</span>")
        self._checked()

    def _checked(self) -> None:
        self.checking = False
        self.check_button.setEnabled(True)
        self._update_buttons()
        if self._recheck:  # the pairs changed while this check ran
            self.check_again()

    # --- training -----------------------------------------------------------------------------------------

    def train(self) -> None:
        """Start a new run: preflight again on the current pairs, create the run folder, start the process."""
        if self.training:
            return
        self.chart.clear()
        self._start(TrainingWorker(self.process_factory, None, False, prepare=lambda: self.prepare_fn(self.root)))
        self.progress_label.setText("Preparing the run…")

    def resume(self) -> None:
        """Continue the newest stopped run from its last checkpoint, with its own saved settings."""
        run_dir = jobs.resumable_run(self.root)
        if self.training or run_dir is None:
            return
        self._load_history(run_dir)
        self._start(TrainingWorker(self.process_factory, run_dir, True))
        self.progress_label.setText(f"Resuming {run_dir.name}…")

    def _start(self, worker: TrainingWorker) -> None:
        self.train_worker = worker
        worker.started.connect(self._on_started)
        worker.event.connect(self._on_event)
        worker.finished.connect(self._on_finished)
        worker.failed.connect(self._on_failed)
        self.status.clear()
        self._notes: dict[str, str] = {}  # the latest evaluation, checkpoint and export check, shown together
        self.bar.setRange(0, 0)  # busy until the first step says how many there are
        self.cancel_button.setText("&Cancel training")
        self.training = True
        self.train_thread = tasks.start(self, worker)
        self._update_buttons()

    def cancel(self) -> None:
        """First press: stop after this step with a checkpoint. Second press: stop at once."""
        if not self.training or self.train_worker is None:
            return
        if self.cancel_button.text().startswith("&Cancel"):
            self.train_worker.cancel()
            self.progress_label.setText("Stopping after this step; a checkpoint is written so Resume can continue…")
            self.cancel_button.setText("Stop &now")
            self.cancel_button.setToolTip("Stops at once; Resume continues from the last checkpoint.")
        else:
            self.train_worker.kill()

    def _on_started(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)

    def _on_event(self, event: dict[str, Any]) -> None:
        self.chart.add_event(event)
        kind = event.get("event")
        if kind in ("start", "step") and event.get("total_steps"):
            self.bar.setRange(0, int(event["total_steps"]))
            self.bar.setValue(int(event.get("step") or 0))
        if kind == "step":
            rate = event.get("tokens_per_second")
            parts = [f"Step {event['step']:,} of {event['total_steps']:,}", f"loss {_num(event.get('loss'))}"]
            if rate:
                parts.append(f"{rate:,.0f} tokens/s")
            if event.get("eta") is not None:
                parts.append(f"about {format_duration(event['eta'])} left")
            self.progress_label.setText(" · ".join(parts))
        elif kind == "eval":
            best = " (the best so far)" if event.get("best") else ""
            self._notes["eval"] = f"Validation loss {_num(event['eval_loss'])} at step {event['step']:,}{best}."
        elif kind == "phase":
            if event.get("message"):
                self.progress_label.setText(event["message"])
            if event.get("fraction") is not None:
                self.bar.setRange(0, 1000)
                self.bar.setValue(int(event["fraction"] * 1000))
        elif kind == "checkpoint":
            self._notes["checkpoint"] = f"Checkpoint at step {event['step']:,}."
        elif kind == "exported":
            self.progress_label.setText("Adapter exported for drafting; checking it…")
        elif kind == "parity":
            self._notes["parity"] = (f"llama.cpp check: {event['agreement']:.1%} of next-token choices agree with "
                                     "the trained model.")  # fmt: skip
        if kind in ("eval", "checkpoint", "parity"):
            self.status.setText(" ".join(self._notes.values()))

    def _on_finished(self, final: dict[str, Any]) -> None:
        self._after_training()
        if final.get("event") == "finished" and final.get("status") == "cancelled":
            steps = (final.get("result") or {}).get("steps")
            self.progress_label.setText(f"Stopped at step {steps}. Resume continues from the checkpoint.")
        elif final.get("event") == "finished":
            self._register(final)
        else:
            self._failed(failure_message(final, self.run_dir))

    def _on_failed(self, message: str) -> None:
        self._after_training()
        self._failed(message)

    def _failed(self, message: str) -> None:
        self.progress_label.setText("")
        self.status.setText(message)
        if not self.closing:
            QMessageBox.warning(self, "Training", message)

    def _after_training(self) -> None:
        self.training = False
        self.bar.setRange(0, 1000)
        self._update_buttons()
        self._show_resumable()
        self.check_again()  # a finished run measured this machine's real speed

    def _register(self, final: dict[str, Any]) -> None:
        """Add the exported adapter to the list (once per run, also when the app closes as it finishes)."""
        run_dir = self.run_dir
        if run_dir is None or run_dir in self._registered:
            return
        self._registered.add(run_dir)
        result = final.get("result") or {}
        summary = (
            f"Trained {result.get('steps')} steps in {format_duration(result.get('seconds') or 0)}: train loss "
            f"{_num(result.get('train_loss'))}, validation loss {_num(result.get('eval_loss'))}."
        )
        try:
            row = jobs.finish(self.db, self.root, run_dir, final)
        except MailvoiceError as exc:
            self._failed(f"{summary} Registering the adapter failed: {exc}")
            return
        if row is None:
            self.progress_label.setText(f"{summary} No adapter was exported; details: {run_dir / 'worker.log'}")
            return
        self.progress_label.setText(f"{summary} Adapter {row['name']} is ready: select it and press Use.")
        self.refresh_adapters(select=row["name"])

    def _load_history(self, run_dir: Path) -> None:
        """Show what a stopped run logged so far: its curve continues when it resumes."""
        self.chart.clear()
        try:
            events = MetricsLog(run_dir / "metrics.jsonl").read()
        except (OSError, ValueError):
            return
        for event in events:
            self.chart.add_event(event)

    def _show_resumable(self) -> None:
        run_dir = None if self.training else jobs.resumable_run(self.root)
        if run_dir is None:
            self.resume_label.clear()
        else:
            step = _stopped_at(run_dir)
            where = f" at step {step:,}" if step else " before its first checkpoint"
            self.resume_label.setText(f"The run of {run_dir.name} stopped{where}. Resume continues it.")
            if not self.chart.points():
                self._load_history(run_dir)
        self._update_buttons()

    # --- adapters -----------------------------------------------------------------------------------------

    def refresh_adapters(self, select: str | None = None) -> None:
        found = registry.list_adapters(self.db)
        self.adapters.setRowCount(len(found))
        for row, a in enumerate(found):
            m = a["metrics"]
            parity = (m.get("parity") or {}).get("agreement")
            cells = ("✓" if a["in_use"] else "", a["name"], a["created_at"][:16].replace("T", " "),
                     str(m.get("steps") or "–"), _num(m.get("train_loss")), _num(m.get("eval_loss")),
                     "–" if parity is None else f"{parity:.1%}")  # fmt: skip
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if col == 0:
                    item.setToolTip("Drafts use this adapter." if a["in_use"] else "")
                self.adapters.setItem(row, col, item)
            if a["name"] == select:
                self.adapters.selectRow(row)
        self._update_buttons()

    def _selected_adapter(self) -> str | None:
        rows = self.adapters.selectionModel().selectedRows()
        if not rows:
            return None
        item = self.adapters.item(rows[0].row(), 1)
        return item.text() if item else None

    def use_selected(self) -> None:
        name = self._selected_adapter()
        if name:
            self.use(name)

    def use(self, name: str) -> None:
        try:
            chosen = registry.use_adapter(self.db, name)
        except MailvoiceError as exc:
            self.show_message(str(exc))
            return
        self.show_message(f"Drafts now use {chosen}." if chosen else "Drafts now use the plain model, no adapter.")
        self.refresh_adapters(select=chosen)
        self.adapter_changed.emit(chosen)

    # --- evaluation ---------------------------------------------------------------------------------------

    def evaluate(self) -> None:
        """Evaluate the selected adapter (none selected: the plain model) off the GUI thread, as ``mailvoice
        eval --limit 50`` does, and open the report; pressed again, stop (finished drafts are kept)."""
        if self.evaluating:
            self.eval_worker.cancel()
            self.eval_status.setText("Stopping the evaluation; the drafts made so far are kept…")
            return
        adapter, root, given = self._selected_adapter(), self.root, self.evaluate_fn

        def work(progress, cancel):
            evaluate = given or _evaluation()  # imported here: the scoring libraries take a while to load
            return evaluate(open_store(root), root, adapter=adapter, examples=True, limit=EVAL_LIMIT,
                            progress=progress, cancel=cancel)  # fmt: skip

        self.eval_worker = CallWorker(work)
        self.eval_worker.progress.connect(self._on_eval_progress)
        self.eval_worker.finished.connect(self._on_evaluated)
        self.eval_worker.failed.connect(self._on_eval_failed)
        self.eval_status.setText(f"Evaluating {adapter or 'the plain model'}: drafting up to {EVAL_LIMIT} "
                                 "validation emails…")  # fmt: skip
        self.eval_button.setText("Stop e&valuating")
        self.evaluating = True
        self.eval_thread = tasks.start(self, self.eval_worker)

    def _on_eval_progress(self, p: Any) -> None:
        """``trainer.evaluation.EvalProgress``: drafting counts pairs; scoring and the report come after."""
        if getattr(p, "phase", "draft") != "draft":
            self.eval_status.setText(f"Evaluating… {p.phase}")
        elif p.total:
            left = f", about {format_duration(p.eta)} left" if p.eta is not None else ""
            self.eval_status.setText(f"Evaluating… {p.done:,} of {p.total:,} drafted{left}")

    def _on_evaluated(self, result: Any) -> None:
        self._after_eval()
        metrics = getattr(result, "metrics", {}) or {}
        shown = ", ".join(f"{k} {metrics[k]:.3f}" for k in SHOWN_SCORES if isinstance(metrics.get(k), (int, float)))
        on = f" on {int(metrics['n'])} emails" if isinstance(metrics.get("n"), (int, float)) else ""
        html = getattr(result, "html_path", None)
        self.eval_status.setText(f"Scores{on}: {shown or 'none'}. The report has them all: {html}")
        if html:
            self.open_url(QUrl.fromLocalFile(str(html)))

    def _on_eval_failed(self, message: str) -> None:
        self._after_eval()
        self.eval_status.setText(message)

    def _after_eval(self) -> None:
        self.evaluating = False
        self.eval_button.setText("E&valuate")
        self._update_buttons()

    # --- closing ------------------------------------------------------------------------------------------

    def shutdown(self, wait_s: float = 900.0) -> None:
        """Stop everything cleanly before the app closes; nothing is lost.

        Training is asked to stop after its current step and write a checkpoint. A step on a CPU can take
        minutes, so when it does not stop at once a dialog says what is happening and offers Stop now (the
        run then resumes from its previous checkpoint); after ``wait_s`` it is stopped anyway. A run that
        finished meanwhile is still registered.
        """
        self.closing = True
        self.pairs.shutdown()
        for worker, thread in ((self.eval_worker, self.eval_thread), (self.check_worker, self.check_thread)):
            if worker is not None and thread is not None and thread.isRunning():
                worker.cancel()
                thread.quit()  # the loop ends once the worker returns (its own quit is queued to this thread)
                thread.wait(30000)
        if self.train_worker is not None and self.train_thread is not None and self.train_thread.isRunning():
            self.train_worker.cancel()
            self.train_thread.quit()
            if not self.train_thread.wait(2000) and not self._wait_for_checkpoint(wait_s):
                self.train_worker.kill()
                self.train_thread.wait(10000)
        final = self.train_worker.final if self.train_worker else None
        if final and final.get("event") == "finished" and final.get("status") == "done":
            self._register(final)


    def _wait_for_checkpoint(self, wait_s: float) -> bool:
        """Wait, with a dialog, for training to stop at the end of its step; False: Stop now, or too long."""
        self.stopping_dialog = dialog = QProgressDialog(
            "Stopping training after the current step and saving a checkpoint, so that Resume can continue it…",
            "Stop &now", 0, 0, self)  # fmt: skip
        dialog.setWindowTitle("Training")
        dialog.setWindowModality(Qt.WindowModality.ApplicationModal)
        dialog.setMinimumDuration(0)
        dialog.show()
        deadline = time.monotonic() + wait_s
        while self.train_thread.isRunning() and not dialog.wasCanceled() and time.monotonic() < deadline:
            QApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 100)
            self.train_thread.wait(100)
        stopped = not self.train_thread.isRunning()
        dialog.close()
        return stopped


def verdict_html(pf: Preflight) -> str:
    """The preflight verdict as a few lines a person can act on (refusals first, in red)."""
    hw, mem = pf.hardware, pf.memory
    lines = []
    if pf.problems:
        lines += [f"<span style='color:#b00020'><b>Cannot train:</b> {_escape(p)}</span>" for p in pf.problems]
    else:
        lines.append(f"<b>Ready to train</b> {pf.shape.name} ({pf.shape.parameters / 1e6:,.0f}M parameters).")
    lines.append(f"{_escape(hw.name)}: {hw.memory_available / 2**30:.1f} of {hw.memory_total / 2**30:.1f} GB free; "
                 f"a run needs about {mem.total / 2**30:.1f} GB at its peak.")  # fmt: skip
    if pf.train_tokens:
        source = "measured on this machine" if pf.rate_source == "measured" else "estimated"
        took = "under a minute" if pf.hours * 3600 < 60 else f"about {format_duration(pf.hours * 3600)}"
        lines.append(f"Time: {took} ({pf.train_tokens:,} tokens per pass at "
                     f"{pf.tokens_per_second:,.0f} tokens/s, {source}).")  # fmt: skip
    if pf.recommended and not pf.fits:
        r = pf.recommended
        lines.append(f"Settings that fit: batch {r['batch_size']} × {r['grad_accum']}, {r['max_seq_len']} tokens.")
    lines += [_escape(a) for a in pf.advice]
    return "<br>".join(lines)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _training_process(run_dir: Path, resume: bool) -> Any:
    from trainer.process import TrainingProcess

    return TrainingProcess(run_dir, resume=resume)


def _evaluation() -> Callable[..., Any]:
    try:
        from trainer.evaluation import evaluate
    except ImportError as exc:
        raise MailvoiceError(f"Evaluation cannot start ({exc}); reinstall Mailvoice (make run).") from exc
    return evaluate
