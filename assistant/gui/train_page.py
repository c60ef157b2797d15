"""The Train page: the training set, what this machine can train and how long it takes, Train on my style for
as long as chosen, progress with a live loss chart, cancel and resume, the trained adapters (use one, see how it
trained, evaluate one).

Training runs in its own process (:class:`trainer.process.TrainingProcess`, followed by a thread), so a crash
or running out of memory ends that process and never the app. Cancelling writes a checkpoint; Stop now ends
the process at once (a stop, not a crash); Resume continues a stopped run from its last checkpoint. The same
headless calls as ``mailvoice train/adapters/use/eval`` do the work.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEventLoop, QSize, Qt, QUrl, Signal
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QProgressDialog,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from assistant.durations import format_duration
from assistant.errors import MailvoiceError
from assistant.gui import tasks
from assistant.gui.adapters_panel import AdaptersPanel, number
from assistant.gui.compat import keep_none_alive
from assistant.gui.corrections_panel import CorrectionsPanel
from assistant.gui.loss_chart import LossChart
from assistant.gui.pairs_panel import BackendFactory, PairsPanel
from assistant.gui.workers import ProcessFactory, TrainingWorker
from assistant.store import open_store
from assistant.workspace import Workspace
from trainer import jobs
from trainer.config import DEFAULT_DURATION, DURATIONS, Duration, TrainConfig, duration
from trainer.data import Example, from_rows, load_examples
from trainer.events import (
    Checkpoint,
    Crashed,
    Error,
    Eval,
    Event,
    Exported,
    Finished,
    Parity,
    Phase,
    Start,
    Step,
    Stopped,
)
from trainer.metrics import MetricsLog
from trainer.preflight import Preflight

PreflightFn = Callable[[Path, TrainConfig, list[Example]], Preflight]  # jobs.run_preflight


def check_machine(
    root: Path,
    preflight: PreflightFn = jobs.run_preflight,
    examples: list[Example] | None = None,
    how_long: str = DEFAULT_DURATION,
) -> Preflight:
    """Preflight for the saved settings as ``how_long`` limits them (a :data:`DURATIONS` key) and ``examples``
    (default: the included pairs); off the GUI thread."""
    db = open_store(root)
    cfg = jobs.resolve_config(db, **duration(how_long).options())
    return preflight(root, cfg, load_examples(db) if examples is None else examples)


def new_training_run(root: Path, preflight: PreflightFn = jobs.run_preflight, how_long: str = DEFAULT_DURATION) -> Path:
    """What ``mailvoice train`` does before it starts the process: settings (as ``how_long`` limits them),
    pairs, preflight, run folder."""
    db = open_store(root)
    cfg = jobs.resolve_config(db, **duration(how_long).options())
    examples = jobs.training_examples(db)
    return jobs.prepare_run(db, root, cfg, examples, preflight(root, cfg, examples))


def stopped_at(run_dir: Path) -> int | None:
    """The last step a stopped run trained (its status says; else its newest checkpoint)."""
    status = jobs.read_status(run_dir)
    result = jobs.status_result(status)
    step = status.get("step", result.steps if result else None)
    return int(step) if isinstance(step, int) else jobs.checkpoint_step(run_dir)


def refresh_summary(preference: dict[str, Any] | None) -> str:
    """What a refresh changed on the held-out edits ("" for a run that was not one)."""
    if not preference:
        return ""
    before, after = preference.get("chosen_accuracy_before"), preference.get("chosen_accuracy_after")
    if before is None or after is None:
        return ""
    n = (preference.get("pairs") or {}).get("held_out") or preference.get("held_out_pairs") or 0
    worse = " It is not closer to your edits: keep using the adapter you had." if after < before else ""
    edits = "newest edit" if n == 1 else f"{n:,} newest edits"
    return (f" On your {edits}, kept aside, your text is now likelier than the old draft in {after:.0%} of "
            f"them ({before:.0%} before).{worse}")  # fmt: skip


def stop_message(final: Finished | Stopped) -> str:
    """What a run the person stopped says: where it stopped and what Resume (or Train) does next."""
    steps = final.steps or 0
    where = f"at step {steps:,}" if steps else "before its first step"
    if final.status == "cancelled":
        return f"Stopped by you {where}, with a checkpoint: Resume continues from there."
    if isinstance(final, Stopped) and final.checkpoint:
        return f"Stopped by you {where}. Resume continues from the checkpoint of step {final.checkpoint:,}."
    return f"Stopped by you {where}, before the first checkpoint: Train starts again from the beginning."


def _run_log(run_dir: Path) -> list[Event]:
    try:
        return MetricsLog(run_dir / "metrics.jsonl").read()
    except (OSError, ValueError):
        return []


def failure_message(final: Event, run_dir: Path | None) -> str:
    """What to tell a person when the training process failed or died, and what they can do next."""
    log = run_dir / "worker.log" if run_dir else "the run folder's worker.log"
    said = final.message if isinstance(final, (Error, Crashed)) else ""
    message = said or "The training process ended without a word."
    if isinstance(final, Crashed):
        return (f"{message} Close other programs or train on a smaller base, then press Resume to continue from "
                f"the last checkpoint. Details: {log}")  # fmt: skip
    if isinstance(final, Error) and final.kind == "bug":
        return f"Training failed ({message}). Press Resume to try again from the last checkpoint. Details: {log}"
    return f"Training stopped: {message}"


class TrainPage(QWidget):
    """Signals: adapter_changed(object) with the adapter drafting now uses (a name, or None for none).

    Args:
        root: the workspace (or its data folder).
        preflight: ``(root, cfg, examples) -> Preflight`` (default: this machine, :func:`jobs.run_preflight`).
        prepare: ``root -> run folder`` for a new run (default: :func:`new_training_run`).
        process_factory: ``(run_dir, resume) -> process`` like :class:`trainer.process.TrainingProcess`.
        backend_factory: ``db -> Backend`` that writes pair instructions (default: llama.cpp on the chosen model).
        evaluate: the evaluation call (default: ``trainer.evaluation.evaluate``).
        open_url: opens the evaluation report (default: ``QDesktopServices.openUrl``).
    """

    adapter_changed = Signal(object)

    def __init__(self, root: Workspace | str, parent: QWidget | None = None, *, preflight: PreflightFn | None = None,
                 prepare: Callable[[Path], Path] | None = None, process_factory: ProcessFactory | None = None,
                 backend_factory: BackendFactory | None = None, evaluate: Callable[..., Any] | None = None,
                 open_url: Callable[[QUrl], Any] | None = None):  # fmt: skip
        super().__init__(parent)
        keep_none_alive()  # a training run makes tens of thousands of Qt calls: see assistant.gui.compat
        self.workspace = Workspace.of(root)
        self.root = self.workspace.root  # the data folder, as the trainer's jobs take it
        self.preflight_fn = preflight or jobs.run_preflight
        self.prepare_fn = prepare  # None: new_training_run with the duration chosen
        self.process_factory = process_factory or _training_process
        self.verdict: Preflight | None = None
        self.run_dir: Path | None = None
        self.train_thread = self.check_thread = None
        self.train_worker: TrainingWorker | None = None
        self.check_worker: tasks.CallWorker | None = None
        self._registered: set[Path] = set()
        self.pairs = PairsPanel(self.workspace, backend_factory)
        self.pairs.changed.connect(self._on_pairs_changed)
        self.pairs.message.connect(self.show_message)
        self.edits = CorrectionsPanel(self.workspace)
        self.edits.message.connect(self.show_message)
        self.edits.refresh_requested.connect(self.ask_refresh)
        self.adapters = AdaptersPanel(self.workspace, evaluate, open_url)
        self.adapters.adapter_changed.connect(self.adapter_changed.emit)
        self.adapters.selection.connect(lambda _adapter: self._show_idle_chart())
        self._build_widgets()
        self._layout()
        self._show_resumable()  # the verdict follows once the pairs are read (their size sets the time)
        self._show_idle_chart()

    # --- building the page ------------------------------------------------------------------------------------

    def _build_widgets(self) -> None:
        self.verdict_label = QLabel("Checking what this machine can train…", wordWrap=True)
        self.duration_box = QComboBox()
        for choice in DURATIONS.values():
            self.duration_box.addItem(choice.label, choice.key)
            self.duration_box.setItemData(self.duration_box.count() - 1, choice.help, Qt.ItemDataRole.ToolTipRole)
        self.duration_box.setCurrentIndex(self.duration_box.findData(DEFAULT_DURATION))
        self.duration_box.setToolTip("How long training may run: a quick test, one pass over your emails, or the "
                                     "full run.")  # fmt: skip
        self.duration_box.currentIndexChanged.connect(lambda _i: self.check_again())
        self.estimate_label = QLabel(wordWrap=True)  # the one time estimate: preflight's, then the measured one
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
        self.progress_label = _Note()
        self.status = _Note()
        self.chart = LossChart()

    def _layout(self) -> None:
        column = QVBoxLayout()
        column.addWidget(QLabel("<b>This machine</b>"))
        column.addWidget(self.verdict_label)
        how_long = QHBoxLayout()
        label = QLabel("&How long:")
        label.setBuddy(self.duration_box)
        how_long.addWidget(label)
        how_long.addWidget(self.duration_box)
        how_long.addWidget(self.estimate_label, 1)
        column.addLayout(how_long)
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
        column.addWidget(self.adapters)
        column.setContentsMargins(0, 0, 0, 0)
        right = _ColumnContent()
        right.setLayout(column)
        # the run's column scrolls on a short screen rather than cut its texts
        self.column = _ColumnScroll(widgetResizable=True, frameShape=QScrollArea.Shape.NoFrame)
        self.column.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.column.setWidget(right)
        self.sources = QTabWidget()  # what training learns from: pairs from sent mail, the user's edits
        self.sources.addTab(self.pairs, "Training pairs")
        self.sources.addTab(self.edits, "Your edits")
        split = QSplitter()
        split.addWidget(self.sources)
        split.addWidget(self.column)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        split.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.addWidget(split)

    # --- state --------------------------------------------------------------------------------------------

    # Busy flags, not QThread.isRunning(): a thread quits only after the slots of its last signal ran.
    training = checking = closing = _recheck = False
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
        self.duration_box.setEnabled(not self.training)
        self.edits.set_enabled_refresh(not self.training)
        resumable = self._resumable()
        self.resume_button.setVisible(resumable is not None)
        self.resume_label.setVisible(resumable is not None)
        self.resume_button.setEnabled(not refused)

    def _resumable(self) -> Path | None:
        """The stopped run Resume would continue: only one with a checkpoint (else Train starts afresh)."""
        run_dir = None if self.training else jobs.resumable_run(self.root)
        return run_dir if run_dir is not None and jobs.checkpoint_step(run_dir) is not None else None

    def how_long(self) -> str:
        """The chosen duration, a :data:`trainer.config.DURATIONS` key."""
        return str(self.duration_box.currentData() or DEFAULT_DURATION)

    def running_job(self) -> str | None:
        """What runs now that quitting would stop, said for a question before quitting; None when nothing."""
        if self.training:
            return ("Training is running. Quitting stops it after the current step and saves a checkpoint: Resume "
                    "continues it.")  # fmt: skip
        if (building := self.pairs.running()) is not None:
            return building
        if self.adapters.evaluating:
            return "An evaluation is running. Quitting stops it; the drafts made so far are kept for the next one."
        if self.adapters.merging:
            return "An adapter is being merged into its model. Quitting waits until the merge is written."
        return None

    def busy(self) -> str:
        """What this page is doing that closing or deleting the data would interrupt ("" when nothing)."""
        if self.training:
            return "Training is running"
        if self.pairs.building:
            return "Pairs are being built"
        if self.adapters.evaluating:
            return "An evaluation is running"
        return ""

    @property
    def eval_thread(self) -> Any:
        return self.adapters.eval_thread

    def show_message(self, text: str) -> None:
        self.status.setText(text)

    # --- preflight -----------------------------------------------------------------------------------------

    def refresh(self) -> None:
        """The page is shown: the edits may have grown since (drafts saved, copied or sent)."""
        self.edits.reload()

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
        root, fn, how_long = self.root, self.preflight_fn, self.how_long()
        try:  # what training_rows gives training, without scrubbing every pair a second time
            examples = from_rows(
                {"instruction": p.instruction, "input": p.input, "output": p.output, "split": p.split}
                for p in self.pairs.model.pairs
                if p.status == "ok"
            )
        except MailvoiceError as exc:
            self._on_verdict_failed(str(exc))
            return
        self.check_worker = tasks.CallWorker(lambda _progress, _cancel: check_machine(root, fn, examples, how_long))
        self.check_worker.finished.connect(self._on_verdict)
        self.check_worker.failed.connect(self._on_verdict_failed)
        self.check_button.setEnabled(False)
        self.check_thread = tasks.start(self, self.check_worker)

    def _on_verdict(self, pf: Preflight) -> None:
        self.verdict = pf
        self.verdict_label.setText(verdict_html(pf))
        if not self.training:
            self.estimate_label.setText(estimate_text(pf, duration(self.how_long())))
        self._checked()

    def _on_verdict_failed(self, message: str) -> None:
        self.verdict = None
        self.verdict_label.setText(f"<span style='color:#b00020'>{_escape(message)}</span>")
        if not self.training:
            self.estimate_label.clear()
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
        self.chart.clear("This run")
        self.chart_source = None
        root, given, preflight, how_long = self.root, self.prepare_fn, self.preflight_fn, self.how_long()
        prepare = (lambda: given(root)) if given else (lambda: new_training_run(root, preflight, how_long=how_long))
        self._start(TrainingWorker(self.process_factory, None, False, prepare=prepare, register=self._registrar()))
        self.progress_label.setText("Preparing the run…")

    def ask_refresh(self) -> None:
        """For "Refresh my voice": what it would train and how long it would take (off the GUI thread), then a
        question; the refresh runs as training does (its own process, progress, cancel, resume)."""
        if self.training:
            return
        ws, how_long = self.workspace, self.how_long()

        def plan() -> tuple[Any, Any]:
            cfg = jobs.resolve_config(ws.db, **duration(how_long).preference_options())
            found = jobs.preference_plan(ws.db, ws.root, cfg)
            return found, jobs.preference_preflight(ws.root, found)

        self.progress_label.setText("Working out what refreshing your voice takes…")
        tasks.call(self, plan, self._confirm_refresh, self._refresh_refused)

    def _confirm_refresh(self, planned: tuple[Any, Any]) -> None:
        found, pf = planned
        self.progress_label.setText("")
        if not pf.ok:
            self._refresh_refused(" ".join(pf.problems))
            return
        n, held, name = len(found.train), len(found.held_out), found.adapter["name"]
        took = "under a minute" if pf.hours * 3600 < 60 else f"about {format_duration(pf.hours * 3600)}"
        self.refresh_box = tasks.confirm(
            self, "Refresh my voice",
            f"Tune {name} on {n:,} of your edits: your text is preferred to the draft it replaced. {held:,} of the "
            f"newest are kept aside to measure it. This takes {took} on this machine. Drafting keeps using {name} "
            "until you choose the new adapter.",
            "&Refresh", self.refresh_voice,
        )  # fmt: skip

    def _refresh_refused(self, message: str) -> None:
        self.progress_label.setText("")
        self.status.setText(message)
        if not self.closing:
            tasks.show_error(self, message, "Refresh my voice")

    def refresh_voice(self) -> None:
        """Start the refresh (preference tuning of the adapter drafting uses, on the user's edits)."""
        if self.training:
            return
        ws, how_long = self.workspace, self.how_long()

        def prepare() -> Path:
            cfg = jobs.resolve_config(ws.db, **duration(how_long).preference_options())
            return jobs.prepare_preference_run(ws.db, ws.root, cfg)

        self.chart.clear("This refresh")
        self.chart_source = None
        self._start(TrainingWorker(self.process_factory, None, False, prepare=prepare, register=self._registrar()))
        self.progress_label.setText("Preparing the refresh of your voice…")

    def resume(self) -> None:
        """Continue the newest stopped run from its last checkpoint, with its own saved settings."""
        run_dir = self._resumable()
        if self.training or run_dir is None:
            return
        self.chart.show_log(_run_log(run_dir), f"The run of {run_dir.name}")  # its curve continues
        self.chart_source = run_dir
        self._start(TrainingWorker(self.process_factory, run_dir, True, register=self._registrar()))
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
        self.run_dir = self.chart_source = Path(run_dir)

    def _on_event(self, event: Event) -> None:
        self.chart.add_event(event)
        if isinstance(event, (Start, Step)) and event.total_steps:
            self.bar.setRange(0, int(event.total_steps))
            self.bar.setValue(int(event.step or 0))
        match event:
            case Step():
                parts = [f"Step {event.step:,} of {event.total_steps:,}", f"loss {number(event.loss)}"]
                self.progress_label.setText(" · ".join(parts))
                if event.eta is not None:  # the estimate from here on is the measured one
                    self.estimate_label.setText(measured_text(event))
            case Eval():
                best = " (the best so far)" if event.best else ""
                self._note("eval", f"Validation loss {number(event.eval_loss)} at step {event.step:,}{best}.")
            case Phase(phase="parity_skipped"):
                self._note("parity", event.message)  # stays beside the result: no check ran
            case Phase():
                if event.message:
                    self.progress_label.setText(event.message)
                if event.fraction is not None:
                    self.bar.setRange(0, 1000)
                    self.bar.setValue(int(event.fraction * 1000))
            case Checkpoint():
                self._note("checkpoint", f"Checkpoint at step {event.step:,}.")
            case Exported():
                self.progress_label.setText("Adapter exported for drafting; checking it…")
            case Parity():
                self._note("parity", f"llama.cpp check: {event.agreement:.1%} of next-token choices agree with the "
                                     "trained model.")  # fmt: skip

    def _note(self, key: str, text: str) -> None:
        """Show the latest evaluation, checkpoint and export check together."""
        self._notes[key] = text
        self.status.setText(" ".join(self._notes.values()))

    def _on_finished(self, final: Event) -> None:
        self._after_training()
        match final:
            case Stopped() | Finished(status="cancelled"):  # the person's Stop now, or Cancel: never a failure
                self.status.clear()
                self.progress_label.setText(stop_message(final))
            case Finished():
                self._register(final)
            case _:
                self._failed(failure_message(final, self.run_dir))

    def _on_failed(self, message: str) -> None:
        self._after_training()
        self._failed(message)

    def _failed(self, message: str) -> None:
        self.progress_label.setText("")
        self.status.setText(message)
        if not self.closing:
            tasks.show_error(self, message, "Training")

    def _after_training(self) -> None:
        self.training = False
        self.edits.reload()  # a refresh changes what counts as new
        self.bar.setRange(0, 1000)
        self.estimate_label.setText(estimate_text(self.verdict, duration(self.how_long())) if self.verdict else "")
        self._update_buttons()
        self._show_resumable()
        self.check_again()  # a finished run measured this machine's real speed

    def _registrar(self) -> Callable[[Path, Finished], dict[str, Any] | None]:
        """What the training worker calls, in its thread, to register a finished run's adapter."""
        ws = self.workspace
        return lambda run_dir, final: jobs.finish(ws.db, ws.root, run_dir, final)

    def _register(self, final: Finished) -> None:
        """Add the exported adapter to the list (once per run, also when the app closes as it finishes)."""
        run_dir = self.run_dir
        if run_dir is None or run_dir in self._registered:
            return
        self._registered.add(run_dir)
        summary = (
            f"Trained {final.steps} steps in {format_duration(final.seconds or 0)}: train loss "
            f"{number(final.train_loss)}, validation loss {number(final.eval_loss)}."
        ) + refresh_summary(final.preference)
        worker = self.train_worker  # registered by the training worker, off this thread
        if worker is not None and worker.register_error:
            self._failed(f"{summary} Registering the adapter failed: {worker.register_error}")
            return
        row = worker.adapter if worker is not None else None
        if row is None:
            self.progress_label.setText(f"{summary} No adapter was exported; details: {run_dir / 'worker.log'}")
            return
        self.progress_label.setText(f"{summary} Adapter {row['name']} is ready: select it and press Use.")
        self.adapters.refresh(select=row["name"])

    chart_source: Path | str | None = None  # what the chart shows: a run folder, an adapter's name, or nothing

    def _show_idle_chart(self) -> None:
        """Between runs the chart shows the selected adapter's training, else the run Resume would continue,
        else the run that just ended."""
        if self.training:
            return
        adapter = self.adapters.selected_adapter()
        if adapter is not None:
            if self.chart_source != adapter["name"]:
                events = jobs.training_log(self.root, adapter)
                self.chart.show_log(events, f"How {adapter['name']} trained" if events else
                                    f"No training log was kept for {adapter['name']}")  # fmt: skip
                self.chart_source = adapter["name"]
            return
        run_dir = self._resumable()
        if run_dir is not None and self.chart_source != run_dir:
            self.chart.show_log(_run_log(run_dir), f"The stopped run of {run_dir.name}")
            self.chart_source = run_dir

    def _show_resumable(self) -> None:
        run_dir = self._resumable()
        if run_dir is None:
            self.resume_label.clear()
        else:
            step, checkpoint = stopped_at(run_dir), jobs.checkpoint_step(run_dir)
            where = f"stopped at step {step:,}" if step else "stopped"
            self.resume_label.setText(f"The run of {run_dir.name} {where}. Resume continues it from the checkpoint "
                                      f"of step {checkpoint:,}.")  # fmt: skip
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
        self.adapters.shutdown()
        if self.check_thread is not None and self.check_thread.isRunning():
            self.check_thread.quit()  # the loop ends once the check returns (its own quit is queued to this thread)
            self.check_thread.wait(30000)
        if self.train_worker is not None and self.train_thread is not None and self.train_thread.isRunning():
            self.train_worker.cancel()
            self.train_thread.quit()
            if not self.train_thread.wait(2000) and not self._wait_for_checkpoint(wait_s):
                self.train_worker.kill()
                self.train_thread.wait(10000)
        final = self.train_worker.final if self.train_worker else None
        if isinstance(final, Finished) and final.status == "done":
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


class _Note(QLabel):
    """A line of the column that takes no room while it says nothing."""

    def __init__(self) -> None:
        super().__init__(wordWrap=True)
        self.hide()

    def setText(self, text: str) -> None:  # noqa: N802 - Qt's name
        super().setText(text)
        self.setVisible(bool(text))

    def clear(self) -> None:
        self.setText("")


class _ColumnContent(QWidget):
    """The page's right-hand column. On a short screen its texts (the verdict on this machine, an evaluation's
    verdict, a note beside a ready adapter) scroll into view rather than being cut, and only there: a scroll
    area gives what it holds the height its layout prefers, so this asks for the least it needs, every text
    whole and the chart at its smallest."""

    def heightForWidth(self, width: int) -> int:
        return self.layout().totalMinimumHeightForWidth(width)


class _ColumnScroll(QScrollArea):
    """Never narrower than the column's content needs (the splitter would otherwise cut it on the right)."""

    def minimumSizeHint(self) -> QSize:
        inner = self.widget().minimumSizeHint().width()
        return QSize(inner + self.verticalScrollBar().sizeHint().width() + 2 * self.frameWidth(), 0)


def verdict_html(pf: Preflight) -> str:
    """The preflight verdict as a few lines a person can act on (refusals first, in red)."""
    hw, mem = pf.hardware, pf.memory
    lines = []
    if pf.problems:
        lines += [f"<span style='color:#b00020'><b>Cannot train:</b> {_escape(p)}</span>" for p in pf.problems]
    else:
        lines.append(f"<b>Ready to train</b> {_escape(pf.shape.name)} ({pf.shape.parameters / 1e6:,.0f}M parameters).")
    lines.append(f"{_escape(hw.name)}: {hw.memory_available / 2**30:.1f} of {hw.memory_total / 2**30:.1f} GB free; "
                 f"a run needs about {mem.total / 2**30:.1f} GB at its peak.")  # fmt: skip
    if pf.recommended and not pf.fits:
        r = pf.recommended
        checkpointing = ", gradient checkpointing" if r.get("gradient_checkpointing") else ""
        lines.append(
            f"Settings that fit: batch {r['batch_size']} × {r['grad_accum']}, {r['max_seq_len']} tokens{checkpointing}."
        )
    # Preflight's note of the CPU's training time is a second estimate: the page has one, beside How long.
    lines += [_escape(a) for a in pf.advice if not a.startswith(CPU_TIME_NOTE)]
    return "<br>".join(lines)


CPU_TIME_NOTE = "Training on the CPU takes about"  # how preflight's advice of a long CPU run begins


def estimate_text(pf: Preflight, how_long: Duration) -> str:
    """The time a run of ``how_long`` takes here, before it starts (the speed measured by the last run on this
    base, else estimated from a quick benchmark)."""
    if not pf.train_tokens:
        return ""
    seconds = pf.hours * 3600
    took = "under a minute" if seconds < 60 else f"about {format_duration(seconds)}"
    source = "measured on this machine" if pf.rate_source == "measured" else "estimated"
    gpu = " A GPU would take minutes." if pf.hardware.device == "cpu" and pf.hours > 2 else ""
    rate = f"{pf.tokens_per_second:,.0f}" if pf.tokens_per_second >= 10 else f"{pf.tokens_per_second:.1f}"
    return f"{how_long.label}: {took} ({pf.train_tokens:,} tokens per pass at {rate} tokens/s, {source}).{gpu}"


def measured_text(step: Step) -> str:
    """The time left while training, from the speed of the steps so far."""
    eta = float(step.eta or 0)
    left = "under a minute left" if eta < 60 else f"about {format_duration(eta)} left"
    rate = step.tokens_per_second
    return f"{left.capitalize()} ({rate:,.0f} tokens/s, measured)." if rate else f"{left.capitalize()} (measured)."


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _training_process(run_dir: Path, resume: bool) -> Any:
    from trainer.process import TrainingProcess

    return TrainingProcess(run_dir, resume=resume)
