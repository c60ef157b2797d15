"""The Train page: pairs review, preflight verdict, a training run followed live (chart, progress, cancel,
resume, failure), adapters and Use. Training runs are the real worker process in its stand-in mode, or a
scripted process with the same interface; the machine is a fixed one so that verdicts are deterministic.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from fake_trainer import save_step, with_fake
from fakes import FakeBackend
from PySide6.QtCore import QObject, Qt, Slot

from assistant.drafting.backend import EngineSettings
from assistant.durations import format_duration
from assistant.errors import MailvoiceError
from assistant.gui.train_page import TrainPage, new_training_run
from assistant.paths import data_dir
from assistant.store.adapters import list_adapters
from assistant.store.db import get_setting
from trainer import jobs, preflight
from trainer.data import load_examples
from trainer.events import Step
from trainer.metrics import MetricsLog
from trainer.pairs import counts, get_pair, import_pairs, list_pairs
from trainer.shapes import shape_of

GB = 2**30
BIG = preflight.Hardware("cpu", "Test CPU (4 cores)", 16 * GB, 12 * GB, 16 * GB, 12 * GB, 4)
TINY = preflight.Hardware("cpu", "Tiny CPU (1 core)", GB // 4, GB // 10, GB // 4, GB // 10, 1)


def machine(hw: preflight.Hardware, rate: float = 900.0):
    """The real preflight on a fixed machine and rate (no torch, no benchmark)."""

    def check(root, cfg, examples):
        return preflight.preflight(shape_of(cfg.base), cfg, hw, jobs.estimate_tokens(examples), measured_rate=rate)

    return check


def fake_run(**spec):
    """A new run through the real start path whose worker process is the stand-in trainer."""
    return lambda root: with_fake(new_training_run(root, machine(BIG)), **{"delay": 0.02, **spec})


@pytest.fixture
def pairs(db, tmp_path):
    rows = [
        {
            "instruction": f"Tell Rosa about the plan number {n}",
            "output": f"Hi Rosa,\n\nHere is plan {n}: we meet on day {n} at the office.\n\nBest,\nAlex",
            "split": "validation" if n % 5 == 0 else "train",
        }
        for n in range(1, 21)
    ]
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    import_pairs(db, path)
    return db


@pytest.fixture
def warnings(monkeypatch):
    shown: list[str] = []
    monkeypatch.setattr("assistant.gui.tasks.show_error", lambda _parent, message, _title="": shown.append(message))
    return shown


def make_page(qtbot, **kwargs) -> TrainPage:
    kwargs.setdefault("preflight", machine(BIG))
    page = TrainPage(str(data_dir()), **kwargs)
    qtbot.addWidget(page, before_close_func=lambda w: w.shutdown())  # as the window does when it closes
    page.resize(1200, 800)
    qtbot.waitUntil(lambda: not page.checking and not page.pairs.loading, timeout=20_000)
    return page


def run_to_end(qtbot, page: TrainPage, timeout: int = 30_000) -> None:
    qtbot.waitUntil(lambda: not page.training, timeout=timeout)


def test_page_builds_on_an_empty_store_and_says_what_to_do(qtbot):
    page = make_page(qtbot)
    assert page.pairs.model.rowCount() == 0
    assert "No pairs yet" in page.pairs.stats.text()
    assert not page.train_button.isEnabled() and "Build pairs first" in page.train_button.toolTip()
    assert page.adapters.table.rowCount() == 0 and not page.resume_button.isVisibleTo(page)
    assert "Ready to train" in page.verdict_label.text() and "Test CPU" in page.verdict_label.text()


def test_page_shows_the_pairs_their_counts_and_searches_them(qtbot, pairs):
    page = make_page(qtbot)
    c = counts(pairs)
    assert page.pairs.model.rowCount() == c["total"] == 20
    assert f"<b>{c['train']}</b> pairs to train on" in page.pairs.stats.text()
    assert f"<b>{c['validation']}</b> kept apart" in page.pairs.stats.text()
    assert page.train_button.isEnabled()
    tokens = jobs.estimate_tokens(load_examples(pairs))
    assert f"Full: under a minute ({tokens:,} tokens per pass at 900 tokens/s" in page.estimate_label.text()
    page.pairs.search.setText("plan number 13")
    assert page.pairs.proxy.rowCount() == 1
    page.pairs.search.setText("")
    assert page.pairs.proxy.rowCount() == 20


def _index_of(page: TrainPage, pair_id: int, column: int):
    for row in range(page.pairs.proxy.rowCount()):
        if page.pairs.proxy.index(row, 0).data() == pair_id:
            return page.pairs.proxy.index(row, column)
    raise AssertionError(pair_id)


def test_editing_an_instruction_inline_goes_to_the_store(qtbot, pairs):
    page = make_page(qtbot)
    first = list_pairs(pairs)[0]
    cell = _index_of(page, first.id, 3)
    assert page.pairs.proxy.setData(cell, "  Ask Rosa to move   Friday's review ")
    assert get_pair(pairs, first.id).instruction == "Ask Rosa to move Friday's review"
    assert cell.data() == "Ask Rosa to move Friday's review"
    assert not page.pairs.proxy.setData(cell, "   ")  # refused, with the core's message
    assert get_pair(pairs, first.id).instruction == "Ask Rosa to move Friday's review"
    assert page.status.text().startswith("The instruction is empty")


def test_excluding_and_including_a_pair_goes_to_the_store(qtbot, pairs):
    page = make_page(qtbot)
    target = next(p for p in list_pairs(pairs) if p.split == "train")
    page.pairs.table.selectRow(_index_of(page, target.id, 0).row())
    assert page.pairs.exclude_button.text() == "E&xclude"
    page.pairs.exclude_button.click()  # written by the app's one writer; the table follows when it is done
    qtbot.waitUntil(lambda: "1 excluded" in page.pairs.stats.text(), timeout=10_000)
    assert get_pair(pairs, target.id).status == "excluded"
    assert page.pairs.exclude_button.text() == "&Include"
    page.pairs.exclude_button.click()
    qtbot.waitUntil(lambda: "0 excluded" in page.pairs.stats.text(), timeout=10_000)
    assert get_pair(pairs, target.id).status == "ok"


def test_the_verdict_on_this_machine(qtbot, pairs):
    page = make_page(qtbot, preflight=None)  # the real check: this machine's device, memory and speed
    text = page.verdict_label.text()
    assert ("CPU (" in text or "GPU" in text or "NVIDIA" in text) and " GB free" in text
    assert page.estimate_label.text().startswith("Full: ") and "tokens/s" in page.estimate_label.text()
    assert page.train_button.isEnabled() == page.verdict.ok


def test_a_model_name_from_its_file_is_shown_as_text_not_markup():
    from dataclasses import replace

    from assistant.drafting.models import embedded_model_path
    from assistant.gui.train_page import verdict_html
    from trainer.config import TrainConfig

    shape = replace(shape_of(embedded_model_path()), name="<img src=x> Llama & co")
    verdict = preflight.preflight(shape, TrainConfig(), BIG, 10_000, measured_rate=900.0)
    assert "<b>Ready to train</b> &lt;img src=x&gt; Llama &amp; co (" in verdict_html(verdict)


def test_a_run_that_fits_only_with_gradient_checkpointing_says_so():
    from dataclasses import replace

    from assistant.drafting.models import embedded_model_path
    from assistant.gui.train_page import verdict_html
    from trainer.config import TrainConfig

    shape, asked = shape_of(embedded_model_path()), TrainConfig(batch_size=2, gradient_checkpointing=False)
    with_it = preflight.estimate_memory(shape, replace(asked, gradient_checkpointing=True), "cpu").total
    need = (with_it + preflight.estimate_memory(shape, asked, "cpu").total) / 2 / 0.9  # fits only with it
    tight = replace(BIG, memory_total=int(need), memory_available=int(need))
    text = verdict_html(preflight.preflight(shape, asked, tight, 10_000))
    assert "Settings that fit: batch 2 × 2, 1024 tokens, gradient checkpointing." in text
    assert "gradient checkpointing" not in verdict_html(preflight.preflight(shape, asked, BIG, 10_000))


def test_the_keyboard_reaches_exclude(qtbot, pairs):
    page = make_page(qtbot)
    page.show()
    page.pairs.table.setFocus()
    page.pairs.table.selectRow(0)
    first = page.pairs.selected_pairs()[0]
    qtbot.keyClick(page.pairs.table, Qt.Key.Key_Delete)
    qtbot.waitUntil(lambda: get_pair(pairs, first.id).status == "excluded", timeout=10_000)
    assert page.busy() == ""


def test_a_machine_that_cannot_train_explains_why_and_keeps_the_button_off(qtbot, pairs):
    page = make_page(qtbot, preflight=machine(TINY))
    text = page.verdict_label.text()
    assert "Cannot train" in text and "does not fit" in text and "Tiny CPU" in text
    assert not page.train_button.isEnabled() and "cannot train" in page.train_button.toolTip()


def test_training_is_followed_live_and_cancel_leaves_it_resumable(qtbot, pairs):
    page = make_page(qtbot, prepare=fake_run(steps=60))
    page.train_button.click()
    assert page.training and page.cancel_button.isVisibleTo(page) and not page.train_button.isEnabled()
    qtbot.waitUntil(lambda: len(page.chart.points()) >= 3, timeout=20_000)
    assert "of 60" in page.progress_label.text() and page.bar.maximum() == 60
    losses = page.chart.points()
    assert [x for x, _ in losses] == list(range(1, len(losses) + 1))
    assert all(y == pytest.approx(1 / x) for x, y in losses)  # the stand-in trainer's loss is 1/step
    page.cancel_button.click()
    assert page.cancel_button.text() == "Stop &now"  # a second press would kill it
    run_to_end(qtbot, page)
    stopped = jobs.read_status(page.run_dir)
    assert stopped["status"] == "cancelled"
    at = stopped["result"]["steps"]
    assert 3 <= at < 60 and f"Stopped by you at step {at}, with a checkpoint" in page.progress_label.text()
    assert jobs.resumable_run(data_dir()) == page.run_dir
    assert page.resume_button.isVisibleTo(page) and f"at step {at}" in page.resume_label.text()

    page.resume_button.click()
    run_to_end(qtbot, page)
    steps = [x for x, _ in page.chart.points()]
    assert steps[-1] == 60 and steps == sorted(set(steps))  # continued, no step drawn twice
    assert jobs.read_status(page.run_dir)["status"] == "done" and jobs.resumable_run(data_dir()) is None
    assert "No adapter was exported" in page.progress_label.text()  # the stand-in exports nothing
    assert not page.resume_button.isVisibleTo(page)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"crash_at": 2}, ["The training process stopped", "Resume", "worker.log"]),
        ({"fail_at": 2}, ["Training stopped: the fake trainer failed as asked"]),
    ],
)
def test_a_failing_process_shows_a_message_to_act_on(qtbot, pairs, warnings, spec, expected):
    page = make_page(qtbot, prepare=fake_run(steps=5, **spec))
    page.train()
    run_to_end(qtbot, page)
    assert len(warnings) == 1 and all(part in warnings[0] for part in expected)
    assert page.status.text() == warnings[0]
    assert jobs.resumable_run(data_dir()) == page.run_dir and page.resume_button.isVisibleTo(page)
    assert page.train_button.isEnabled()


def test_training_cannot_start_without_pairs_and_says_how_to_get_them(qtbot, warnings):
    page = make_page(qtbot, prepare=fake_run(steps=3))
    page.train()  # the button is off; the call still reaches the core's refusal
    run_to_end(qtbot, page)
    assert warnings and "build pairs from your sent mail" in warnings[0]


class ScriptedProcess:
    """Same interface and events as TrainingProcess, replayed from a list without a subprocess; it finishes
    with an exported adapter so the page registers it, and logs metrics.jsonl as the real worker does."""

    def __init__(self, run_dir: Path, resume: bool):
        self.run_dir, self.resume, self.final, self.cancelled = run_dir, resume, None, False
        self.log = MetricsLog(run_dir / "metrics.jsonl")

    def start(self) -> None:
        pass

    def events(self):
        yield from self._logged({"event": "start", "step": 0, "total_steps": 10})
        for step in range(1, 11):
            yield from self._logged({"event": "step", "step": step, "total_steps": 10, "loss": 3.0 - 0.2 * step,
                                     "eta": 20 - 2 * step, "tokens_per_second": 1500.0})  # fmt: skip
            if step % 5 == 0:
                yield from self._logged({"event": "eval", "step": step, "eval_loss": 2.5 - 0.1 * step, "best": True})
        (self.run_dir / "adapter.gguf").write_bytes(b"GGUF")
        self.final = {
            "event": "finished",
            "status": "done",
            "result": {"steps": 10, "train_loss": 1.1, "eval_loss": 1.5, "seconds": 12.0},
            "export": {"path": str(self.run_dir / "adapter.gguf")},
        }
        yield self.final

    def _logged(self, event):
        self.log.write(event)
        yield event

    def cancel(self) -> None:
        self.cancelled = True

    def kill(self) -> None:
        pass


class ParitySkippedProcess(ScriptedProcess):
    """A run whose llama.cpp check did not fit in the memory left: the worker says so just before it finishes."""

    def events(self):
        for event in super().events():
            if event["event"] == "finished":
                yield {"event": "phase", "phase": "parity_skipped", "message": "Skipped the llama.cpp check: why."}
            yield event


def test_a_skipped_llama_cpp_check_is_said_beside_the_ready_adapter(qtbot, pairs):
    page = make_page(qtbot, prepare=fake_run(steps=1), process_factory=ParitySkippedProcess)
    page.train()
    run_to_end(qtbot, page)
    assert "is ready" in page.progress_label.text()
    assert page.status.text().endswith("Skipped the llama.cpp check: why.")


def test_on_a_short_screen_long_texts_in_the_column_scroll_into_view_and_are_never_cut(qtbot, pairs):
    from PySide6.QtWidgets import QLabel

    page = make_page(qtbot)
    page.resize(940, 560)  # the page in a 1100-pixel window beside the list of pages
    page.show()
    qtbot.waitExposed(page)
    sentence = "No clear difference between my-voice and the plain model: shared words 33% against 33%. "
    page.adapters.status.setText(sentence * 5)  # an evaluation's verdict with all its caveats
    page.status.setText("Adapter my-voice is ready. " + "Skipped the llama.cpp check: the base does not fit. " * 2)
    qtbot.wait(50)
    labels = [w for w in page.findChildren(QLabel) if w.isVisible() and w.wordWrap() and w.text()]
    assert page.adapters.status in labels and page.status in labels
    assert [w.text()[:30] for w in labels if w.height() < w.heightForWidth(w.width())] == []
    column, viewport = page.column.widget(), page.column.viewport()
    in_column = [w for w in labels if column.isAncestorOf(w)]
    assert [w.text()[:30] for w in in_column if w.mapTo(column, w.rect().topRight()).x() >= viewport.width()] == []
    assert page.width() == 940 and page.height() == 560  # nothing forced the page larger


def test_the_column_scrolls_only_when_its_texts_would_not_fit_otherwise(qtbot, pairs):
    page = make_page(qtbot)
    page.resize(1100, 720)
    page.show()
    qtbot.waitExposed(page)
    page.adapters.status.setText("No clear difference between my-voice and the plain model. " * 3)
    qtbot.wait(50)
    scroll = page.column
    assert scroll.verticalScrollBar().maximum() == 0  # the chart gave up height instead
    assert not page.status.isVisibleTo(page) and not page.progress_label.isVisibleTo(page)  # no room for nothing
    page.status.setText("Skipped the llama.cpp check.")
    assert page.status.isVisibleTo(page)
    page.status.clear()
    assert not page.status.isVisibleTo(page)
    page.adapters.status.setText("No clear difference between my-voice and the plain model. " * 30)
    qtbot.wait(50)
    assert scroll.verticalScrollBar().maximum() > 0


def test_the_adapter_is_registered_off_the_gui_thread_and_a_refusal_is_said(qtbot, pairs, monkeypatch, warnings):
    finish, threads = jobs.finish, []

    def recording(*args, **kwargs):
        threads.append(threading.current_thread())
        return finish(*args, **kwargs)

    monkeypatch.setattr(jobs, "finish", recording)
    page = make_page(qtbot, prepare=fake_run(steps=1), process_factory=ScriptedProcess)
    page.train()
    run_to_end(qtbot, page)
    assert len(threads) == 1 and threads[0] is not threading.main_thread()
    assert "is ready" in page.progress_label.text() and len(list_adapters(pairs)) == 1

    def refused(*_args, **_kwargs):
        raise MailvoiceError("The adapters folder is read-only.")

    monkeypatch.setattr(jobs, "finish", refused)
    page.train()
    run_to_end(qtbot, page)
    assert "Registering the adapter failed: The adapters folder is read-only." in page.status.text()
    assert warnings == [page.status.text()] and len(list_adapters(pairs)) == 1


def test_chart_gets_train_and_eval_points_and_the_adapter_is_registered_and_used(qtbot, pairs):
    page = make_page(qtbot, prepare=fake_run(steps=1), process_factory=ScriptedProcess)
    page.train()
    run_to_end(qtbot, page)
    assert page.chart.points("train") == [(s, pytest.approx(3.0 - 0.2 * s)) for s in range(1, 11)]
    assert page.chart.points("eval") == [(5, pytest.approx(2.0)), (10, pytest.approx(1.5))]
    assert "Step 10 of 10" in page.progress_label.text() or "is ready" in page.progress_label.text()
    (adapter,) = list_adapters(pairs)
    assert adapter["metrics"]["eval_loss"] == 1.5 and not adapter["in_use"]
    assert f"Adapter {adapter['name']} is ready" in page.progress_label.text()
    assert page.adapters.table.rowCount() == 1 and page.adapters.table.item(0, 1).text() == adapter["name"]
    assert page.adapters.table.item(0, 5).text() == "1.500" and page.adapters.table.item(0, 0).text() == ""

    with qtbot.waitSignal(page.adapter_changed) as changed:
        page.adapters.table.selectRow(0)
        page.adapters.use_button.click()
    assert changed.args == [adapter["name"]] and get_setting(pairs, "adapter") == adapter["name"]
    assert page.adapters.table.item(0, 0).text() == "✓"
    with qtbot.waitSignal(page.adapter_changed):
        page.adapters.plain_button.click()
    assert get_setting(pairs, "adapter") is None and page.adapters.table.item(0, 0).text() == ""


def test_closing_mid_training_writes_a_checkpoint_and_keeps_the_run(qtbot, pairs):
    page = make_page(qtbot, prepare=fake_run(steps=400))
    page.train()
    qtbot.waitUntil(lambda: len(page.chart.points()) >= 2, timeout=20_000)
    run_dir = page.run_dir
    page.shutdown()
    status = jobs.read_status(run_dir)
    assert status["status"] == "cancelled" and status["result"]["steps"] < 400
    assert jobs.resumable_run(data_dir()) == run_dir


def _training_started(qtbot, page: TrainPage) -> Path:
    qtbot.waitUntil(lambda: page.run_dir is not None and jobs.read_status(page.run_dir)["status"] == "running",
                    timeout=20_000)  # fmt: skip
    return page.run_dir


def test_closing_during_a_slow_step_waits_for_its_checkpoint_with_a_dialog(qtbot, pairs):
    page = make_page(qtbot, prepare=fake_run(steps=5, delay=3.0))
    page.train()
    run_dir = _training_started(qtbot, page)
    page.shutdown()
    assert page.stopping_dialog is not None and not page.stopping_dialog.isVisible()
    status = jobs.read_status(run_dir)
    assert status["status"] == "cancelled" and status["result"]["steps"] == 1
    assert jobs.resumable_run(data_dir()) == run_dir


def test_stop_now_while_closing_kills_the_step_and_keeps_the_run_resumable(qtbot, pairs):
    from PySide6.QtCore import QTimer

    page = make_page(qtbot, prepare=fake_run(steps=5, delay=8.0))
    page.train()
    run_dir = _training_started(qtbot, page)
    QTimer.singleShot(3000, lambda: page.stopping_dialog.cancel())  # the person presses Stop now
    started = time.monotonic()
    page.shutdown()
    assert time.monotonic() - started < 7  # did not wait for the 8-second step
    assert jobs.read_status(run_dir)["status"] == "stopped"  # killed mid-step by the app: a stop, not a crash
    assert jobs.resumable_run(data_dir()) == run_dir  # its process is gone, so it can be resumed


class Labeller(FakeBackend):
    """Answers every reverse-instruction prompt with a valid instruction."""

    def stream(self, messages, params, cancel=None):
        self.enqueue("Tell them the plan for next week.")
        yield from super().stream(messages, params, cancel)


def test_pairs_are_built_from_the_page_when_there_are_none(qtbot, db, tmp_path):
    import mailgen as gen

    from assistant.importer import import_paths

    box = tmp_path / "mail.mbox"
    gen.write_mbox(box, gen.generate_messages(60, seed=3))
    import_paths(db, [box], me=[gen.ME_ADDR])
    page = make_page(qtbot, backend_factory=lambda _db: Labeller(settings=EngineSettings("fake.gguf", n_ctx=2048)))
    assert not page.train_button.isEnabled()
    page.pairs.build_button.click()
    assert page.pairs.building and page.pairs.stop_build_button.isVisibleTo(page)
    qtbot.waitUntil(lambda: not page.pairs.building and not page.pairs.loading, timeout=60_000)
    built = counts(db)
    assert built["total"] > 5 and page.pairs.model.rowCount() == built["total"]
    assert page.pairs.build_status.text().startswith(f"Done: {built['total']} new pairs")
    assert page.train_button.isEnabled()


class FakeResult:
    def __init__(self, html: Path, metrics: dict):
        self.metrics, self.json_path, self.html_path = metrics, html.with_suffix(".json"), html


@dataclass
class Progress:  # as trainer.evaluation.EvalProgress
    phase: str
    done: int
    total: int
    elapsed: float
    eta: float | None = None


PLAIN = {"n": 60, "bleu": 0.05, "chrf": 0.30, "rouge_l": 0.20, "length_ratio": 1.1, "verbatim_overlap": 0.0}
TRAINED = {**PLAIN, "chrf": 0.37, "rouge_l": 0.26}


def register_adapter(db, name: str, run_dir: Path | None = None, metrics: dict | None = None) -> None:
    from assistant.store.adapters import register

    base = {"path": "/models/base.gguf", "size": 1, "sha256": "0" * 64}
    gguf = data_dir() / "adapters" / name / "adapter.gguf"
    register(db, data_dir(), name, gguf, base, {}, metrics or {}, run_dir or data_dir() / "runs" / name)


def test_the_adapters_table_fits_the_page_column_without_scrolling_sideways(qtbot, pairs):
    from assistant.gui.adapters_panel import AdaptersPanel

    metrics = {"steps": 1200, "train_loss": 2.34, "eval_loss": 2.406, "parity": {"agreement": 0.992}}
    name = "my-voice-after-the-summer-holidays"
    register_adapter(pairs, name, metrics=metrics)
    panel = AdaptersPanel(data_dir())
    qtbot.addWidget(panel)
    panel.resize(400, 200)  # the Train page's right-hand column in the README's screenshot
    panel.show()
    qtbot.waitExposed(panel)
    table = panel.table
    assert table.horizontalHeader().length() <= table.viewport().width()
    assert table.horizontalScrollBar().maximum() == 0
    assert [table.item(0, c).text() for c in (3, 4, 5, 6)] == ["1200", "2.340", "2.406", "99.2%"]
    assert table.item(0, 1).toolTip() == name  # the name may be shortened in its cell, never in its tooltip
    header = table.horizontalHeader()
    for col in range(2, table.columnCount()):  # each number and its heading are shown whole
        shown = max(table.item(0, col).text(), table.horizontalHeaderItem(col).text(), key=len)
        assert header.sectionSize(col) >= table.fontMetrics().horizontalAdvance(shown)
        assert table.horizontalHeaderItem(col).toolTip()


def recording_evaluate(tmp_path: Path, scores: dict, calls: list):
    """An evaluation that records its scores in the evals table as the core does (scores: adapter or "plain")."""
    from trainer.evaluation import store

    def evaluate(db, root, *, adapter, examples, limit, seed=0, backend=None, progress=None, cancel=None):
        calls.append((adapter, examples, limit))
        progress(Progress("draft", 1, 2, 0.5, eta=1.0))
        metrics = scores[adapter or "plain"]
        folder = tmp_path / f"report-{len(calls)}"
        folder.mkdir()
        store.ensure(db)
        store.record(db, kind="eval", adapter=adapter, n=metrics["n"], seed=seed,
                     config=[{"adapter": adapter, "examples": examples, "limit": limit}],
                     metrics={adapter or "base": metrics}, report_dir=folder, root=root, seconds=1.0)  # fmt: skip
        return FakeResult(folder / "report.html", metrics)

    return evaluate


def test_evaluation_gives_a_verdict_in_words_and_opens_the_report_on_request(qtbot, pairs, tmp_path):
    calls, opened = [], []
    page = make_page(qtbot, open_url=opened.append,
                     evaluate=recording_evaluate(tmp_path, {"plain": PLAIN, "trained": TRAINED}, calls))  # fmt: skip
    assert not page.adapters.report_button.isVisibleTo(page)
    page.adapters.eval_button.click()  # nothing selected: the plain model
    assert page.adapters.eval_button.text() == "Stop e&valuating"
    qtbot.waitUntil(lambda: not page.adapters.evaluating, timeout=20_000)
    plain = page.adapters.status.text()
    assert plain.startswith("The plain model, without an adapter: shared words 20%, shared characters 30%"), plain
    assert opened == [] and page.adapters.report_button.isVisibleTo(page)  # opened when asked, not by itself
    page.adapters.report_button.click()
    assert [u.toLocalFile() for u in opened] == [str(tmp_path / "report-1" / "report.html")]

    register_adapter(pairs, "trained")
    page.adapters.refresh(select="trained")
    page.adapters.eval_button.click()
    qtbot.waitUntil(lambda: not page.adapters.evaluating, timeout=20_000)
    verdict = page.adapters.status.text()
    assert verdict.startswith("trained writes closer to your own emails than the plain model: shared words 26% "
                              "against 20%, shared characters 37% against 30%."), verdict  # fmt: skip
    assert "bleu" not in verdict and "chrf" not in verdict  # words, not metric names
    page.adapters.report_button.click()
    assert [u.toLocalFile() for u in opened][-1] == str(tmp_path / "report-2" / "report.html")
    assert calls == [(None, True, 50), ("trained", True, 50)]
    page.adapters.show_progress(Progress("draft", 3, 10, 1.0, eta=65.0))
    assert page.adapters.status.text() == "Evaluating… 3 of 10 drafted, about 1m 05s left"


@pytest.mark.parametrize(
    ("scores", "expected"),
    [
        ({"trained": {**TRAINED, "n": 3}}, "Too few emails to tell: 3 validation emails were drafted"),
        ({"trained": TRAINED}, "Not compared with the plain model yet: evaluate it too"),
        (
            {"trained": {**TRAINED, "n": 20, "verbatim_overlap": 0.1}, "plain": {**PLAIN, "n": 20}},
            "Only 20 emails were drafted: a rough verdict. 10% of the drafts repeat a training email word for word.",
        ),
    ],
)
def test_the_verdict_says_when_it_cannot_tell(qtbot, pairs, tmp_path, scores, expected):
    calls: list = []
    page = make_page(qtbot, evaluate=recording_evaluate(tmp_path, scores, calls), open_url=lambda url: None)
    if "plain" in scores:
        page.adapters.eval_button.click()
        qtbot.waitUntil(lambda: not page.adapters.evaluating, timeout=20_000)
    register_adapter(pairs, "trained")
    page.adapters.refresh(select="trained")
    page.adapters.eval_button.click()
    qtbot.waitUntil(lambda: not page.adapters.evaluating, timeout=20_000)
    assert expected in page.adapters.status.text(), page.adapters.status.text()


def test_a_failed_evaluation_says_why(qtbot, pairs):
    from trainer.pairs.errors import PairsError

    def evaluate(db, root, **_options):
        raise PairsError("No validation pairs yet: build pairs first.")

    page = make_page(qtbot, evaluate=evaluate, open_url=lambda url: pytest.fail("nothing to open"))
    page.adapters.eval_button.click()
    qtbot.waitUntil(lambda: not page.adapters.evaluating, timeout=20_000)
    assert page.adapters.status.text() == "No validation pairs yet: build pairs first."
    assert page.adapters.eval_button.text() == "E&valuate"


def test_a_stopped_evaluation_says_so_not_as_a_failure(qtbot, pairs):
    from assistant.errors import Cancelled

    def evaluate(db, root, **_options):
        raise Cancelled()  # as evaluate does when Stop evaluating is pressed

    page = make_page(qtbot, evaluate=evaluate, open_url=lambda url: pytest.fail("nothing to open"))
    page.adapters.eval_button.click()
    qtbot.waitUntil(lambda: not page.adapters.evaluating, timeout=20_000)
    assert page.adapters.status.text() == (
        "Evaluation stopped. The drafts it wrote are kept: Evaluate continues from them."
    )
    assert page.adapters.eval_button.text() == "E&valuate"


def test_merge_folds_the_selected_adapter_into_its_base_and_drafts_use_it(qtbot, pairs, data_home, tmp_path):
    import shutil

    from test_merge import tiny_adapter, tiny_base

    from assistant.drafting import engine_settings
    from assistant.store.adapters import register, use_adapter
    from trainer.base_model import identify

    base = tiny_base(tmp_path / "tiny.gguf")
    folder = data_home / "adapters" / "style-1"
    shutil.copytree(tiny_adapter(tmp_path / "made" / "style-1", base).parent, folder)
    register(pairs, data_home, "style-1", folder / "adapter.gguf", identify(base).to_json(), {}, {}, data_home)
    use_adapter(pairs, "style-1")
    page = make_page(qtbot)
    questions, changed = [], []
    page.adapters.confirm = lambda q: questions.append(q) or True
    page.adapters.adapter_changed.connect(changed.append)
    assert not page.adapters.merge_button.isEnabled()  # nothing selected yet
    page.adapters.table.selectRow(0)
    page.adapters.merge_button.click()
    qtbot.waitUntil(lambda: not page.adapters.merging, timeout=30_000)
    merged = folder / "merged-q8_0.gguf"
    assert merged.is_file() and len(questions) == 1 and "merged-q8_0.gguf" in questions[0], questions
    qtbot.waitUntil(lambda: changed == [None], timeout=30_000)  # switched off the GUI thread
    assert "Drafts now use the merged model" in page.adapters.status.text()
    settings, adapter = engine_settings(pairs)
    assert settings.model_path == str(merged) and settings.lora_path is None and adapter is None
    page.adapters._merge_started = time.monotonic() - 10  # 10 s in, half done
    page.adapters._merge_progress({"event": "phase", "phase": "merge", "fraction": 0.5})
    assert page.adapters.status.text() == "Merging… 50%, about 10s left"


def test_a_failed_merge_says_why(qtbot, pairs, data_home):
    from assistant.store.adapters import register

    adapter = data_home / "adapters" / "gone" / "adapter.gguf"
    base = {"path": "/nowhere/base.gguf", "size": 1, "sha256": "0" * 64}
    register(pairs, data_home, "gone", adapter, base, {}, {}, data_home)
    page = make_page(qtbot)
    page.adapters.confirm = lambda q: pytest.fail("nothing was merged")
    page.adapters.table.selectRow(0)
    page.adapters.merge_button.click()
    qtbot.waitUntil(lambda: not page.adapters.merging, timeout=30_000)
    assert "which is gone. Train it again" in page.adapters.status.text()  # the core's message, what to do
    assert page.adapters.merge_button.isEnabled()


def test_many_qt_calls_do_not_exhaust_none():
    """PySide6 6.12 on Python 3.11 drops a reference to None per void Qt call; the page's guard survives it."""
    script = textwrap.dedent(
        """
        import os
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        from PySide6.QtWidgets import QApplication, QLabel
        from assistant.gui.compat import keep_none_alive
        app = QApplication([])
        keep_none_alive()
        label = QLabel()
        for _ in range(60_000):  # None starts with a few thousand references: unguarded, this aborts
            label.setText("step")
        print("alive")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "alive", done.stderr[-500:]


def test_the_page_applies_the_guard(qtbot):
    make_page(qtbot)
    assert sys.version_info >= (3, 12) or sys.getrefcount(None) > 1 << 40


@pytest.mark.slow
def test_a_real_training_run_on_the_embedded_model_ends_in_a_usable_adapter(qtbot, pairs, data_home, request):
    """The real worker and QLoRA recipe, a few steps on SmolLM2-135M: events, chart, export, registration."""
    from assistant.store.db import set_setting

    cache = request.config.cache.mkdir("mailvoice-train")  # the base dequantized once, shared with test_train_e2e
    (data_dir() / "cache").symlink_to(cache, target_is_directory=True)
    set_setting(pairs, "train", {"max_steps": 3, "epochs": 10, "batch_size": 1, "grad_accum": 1, "max_seq_len": 256,
                                 "learning_rate": 3e-3, "lora_r": 8, "lora_alpha": 16, "eval_every": 3,
                                 "checkpoint_every": 3, "cpu_threads": 1, "parity": False})  # fmt: skip
    page = make_page(qtbot)
    page.train()
    run_to_end(qtbot, page, timeout=300_000)
    assert [x for x, _ in page.chart.points()] == [1, 2, 3]
    assert [x for x, _ in page.chart.points("eval")] == [3]
    (adapter,) = list_adapters(pairs)
    assert (data_dir() / adapter["path"]).stat().st_size > 0 and adapter["metrics"]["steps"] == 3
    assert page.adapters.table.item(0, 1).text() == adapter["name"] and page.adapters.table.item(0, 3).text() == "3"
    assert f"Adapter {adapter['name']} is ready" in page.progress_label.text()


@pytest.mark.slow
def test_evaluate_with_the_evaluation_core(qtbot, pairs):
    """The page's call into trainer.evaluation (fake model and embedder): a report is written and opened."""
    import functools

    import numpy as np

    evaluation = pytest.importorskip("trainer.evaluation")

    def embed(texts):
        out = np.zeros((len(texts), 16))
        for i, text in enumerate(texts):
            for word in text.split():
                out[i, sum(map(ord, word)) % 16] += 1
        return out

    opened = []
    core = functools.partial(evaluation.evaluate, backend=FakeBackend(), embed=embed)
    page = make_page(qtbot, evaluate=core, open_url=opened.append)
    page.adapters.eval_button.click()
    qtbot.waitUntil(lambda: not page.adapters.evaluating, timeout=120_000)
    page.adapters.report_button.click()
    (url,) = opened
    assert Path(url.toLocalFile()).is_file() and url.toLocalFile().endswith("report.html")
    n = counts(pairs)["validation"]  # 4: too few to tell anything
    assert page.adapters.status.text().startswith(f"Too few emails to tell: {n} validation emails were drafted")


# --- a stop is a stop ---------------------------------------------------------------------------------------


def test_stop_now_is_reported_as_the_persons_stop_not_as_a_crash(qtbot, pairs, warnings):
    page = make_page(qtbot, prepare=fake_run(steps=60, delay=0.3))
    page.train()
    qtbot.waitUntil(lambda: len(page.chart.points()) >= 2, timeout=20_000)
    page.cancel_button.click()  # Cancel training: after this step...
    page.cancel_button.click()  # ...no, Stop now
    run_to_end(qtbot, page)
    status = jobs.read_status(page.run_dir)
    assert status["status"] == "stopped" and status["by"] == "user", status
    assert warnings == [] and page.status.text() == ""  # no crash dialog, no red text
    text = page.progress_label.text()
    assert text.startswith(f"Stopped by you at step {status['step']}.") and "Resume continues" in text, text
    assert "memory" not in text and "killed" not in text
    assert page.resume_button.isVisibleTo(page) and page.train_button.isEnabled()


def test_stop_now_before_the_first_checkpoint_offers_train_not_resume(qtbot, pairs, warnings):
    page = make_page(qtbot, prepare=fake_run(steps=5, delay=6.0))
    page.train()
    run_dir = _training_started(qtbot, page)
    page.cancel_button.click()
    page.cancel_button.click()
    run_to_end(qtbot, page, timeout=5_000)  # did not wait for the 6-second step
    assert jobs.read_status(run_dir)["status"] == "stopped" and jobs.checkpoint_step(run_dir) is None
    assert warnings == [] and "before the first checkpoint: Train starts again" in page.progress_label.text()
    assert not page.resume_button.isVisibleTo(page) and page.train_button.isEnabled()


def test_a_crash_the_app_did_not_cause_keeps_the_crash_wording(qtbot, pairs, warnings):
    page = make_page(qtbot, prepare=fake_run(steps=5, crash_at=3))
    page.train()
    run_to_end(qtbot, page)
    assert jobs.read_status(page.run_dir)["status"] == "crashed"
    assert len(warnings) == 1 and "The training process stopped (exit code 3)" in warnings[0]
    assert "Stopped by you" not in page.progress_label.text()


# --- the pairs table ----------------------------------------------------------------------------------------


def _click_row(qtbot, table, row: int) -> None:
    rect = table.visualRect(table.model().index(row, 3))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def test_the_preview_shows_the_row_clicked_with_the_mouse(qtbot, pairs):
    page = make_page(qtbot)
    page.show()
    qtbot.waitExposed(page)
    table, proxy = page.pairs.table, page.pairs.proxy
    for row in (1, 5, 2):
        _click_row(qtbot, table, row)
        shown = page.pairs.model.pairs[proxy.mapToSource(proxy.index(row, 0)).row()]
        assert page.pairs.preview.toPlainText() == shown.output, row
        assert page.pairs.selected_pairs() == [shown]
    page.pairs.search.setText("plan number 1")  # filtered: proxy rows differ from the model's
    _click_row(qtbot, table, 1)
    shown = page.pairs.model.pairs[proxy.mapToSource(proxy.index(1, 0)).row()]
    assert page.pairs.preview.toPlainText() == shown.output


def test_the_page_counts_stand_in_instructions_and_says_what_would_make_them_better(qtbot, db, tmp_path):
    import mailgen as gen

    from assistant.importer import import_paths

    box = tmp_path / "mail.mbox"
    gen.write_mbox(box, gen.generate_messages(40, seed=5))
    import_paths(db, [box], me=[gen.ME_ADDR])
    # A model whose every answer fails the checks ("Reply N" is no instruction): every pair is a stand-in.
    page = make_page(qtbot, backend_factory=lambda _db: FakeBackend(settings=EngineSettings("small.gguf", 2048)))
    page.pairs.build()
    qtbot.waitUntil(lambda: not page.pairs.building and not page.pairs.loading, timeout=60_000)
    built = [p for p in list_pairs(db) if p.status == "ok"]
    assert built and all("fallback" in p.flags for p in built)
    text = page.pairs.stats.text()
    assert f"<b>{len(built)}</b> of the {len(built)} instructions the model" in text, text
    assert "larger labelling model" in text and "pairs build --model" in text
    page.pairs.search.setText("fallback")
    assert page.pairs.proxy.rowCount() == len(built)


def test_a_model_that_writes_good_instructions_gets_no_stand_in_note(qtbot, db, tmp_path):
    import mailgen as gen

    from assistant.importer import import_paths

    box = tmp_path / "mail.mbox"
    gen.write_mbox(box, gen.generate_messages(40, seed=5))
    import_paths(db, [box], me=[gen.ME_ADDR])
    page = make_page(qtbot, backend_factory=lambda _db: Labeller(settings=EngineSettings("fake.gguf", n_ctx=2048)))
    page.pairs.build()
    qtbot.waitUntil(lambda: not page.pairs.building and not page.pairs.loading, timeout=60_000)
    assert counts(db)["total"] and "stand-ins" not in page.pairs.stats.text()


class SlowLabeller(Labeller):
    def stream(self, messages, params, cancel=None):
        time.sleep(0.2)
        yield from super().stream(messages, params, cancel)


def test_running_job_names_a_pairs_build_for_the_question_before_quitting(qtbot, db, tmp_path):
    import mailgen as gen

    from assistant.importer import import_paths

    box = tmp_path / "mail.mbox"
    gen.write_mbox(box, gen.generate_messages(40, seed=5))
    import_paths(db, [box], me=[gen.ME_ADDR])
    page = make_page(qtbot, backend_factory=lambda _db: SlowLabeller(settings=EngineSettings("fake.gguf", 2048)))
    assert page.running_job() is None
    page.pairs.build()
    qtbot.waitUntil(lambda: page.pairs.last_progress is not None and page.pairs.last_progress.done >= 1,
                    timeout=30_000)  # fmt: skip
    job = page.running_job()
    assert job.startswith("Training pairs are being built: ") and "emails labelled" in job
    assert "every finished pair is kept" in job
    page.pairs.stop_build()
    qtbot.waitUntil(lambda: not page.pairs.building and not page.pairs.loading, timeout=30_000)
    assert page.running_job() is None


def test_running_job_names_training(qtbot, pairs):
    page = make_page(qtbot, prepare=fake_run(steps=400))
    page.train()
    assert page.running_job().startswith("Training is running.")
    page.shutdown()
    qtbot.waitUntil(lambda: page.running_job() is None, timeout=10_000)


# --- the loss chart -----------------------------------------------------------------------------------------


def _x_range(chart) -> tuple[float, float]:
    return chart.x_axis.min(), chart.x_axis.max()


def _blue_pixels(chart) -> int:
    """Pixels of the training curve's colour inside the plot area (the legend's swatch is outside it)."""
    image = chart.grab().toImage()
    area = chart.chart().plotArea().toRect()
    count = 0
    for x in range(area.left(), area.right(), 1):
        for y in range(area.top(), area.bottom(), 1):
            c = image.pixelColor(x, y)
            count += abs(c.red() - 0x2F) < 40 and abs(c.green() - 0x6F) < 40 and abs(c.blue() - 0xB3) < 40
    return count


def test_a_short_run_is_drawn_from_its_first_step_over_its_own_steps(qtbot, pairs):
    page = make_page(qtbot, prepare=fake_run(steps=1))
    page.show()
    page.train()
    run_to_end(qtbot, page)
    assert page.chart.points() == [(1, 1.0)]
    qtbot.wait(50)
    assert _blue_pixels(page.chart) > 10  # one step alone is a visible dot
    low, high = _x_range(page.chart)
    assert low < 1 < high <= 1.5  # the run's one step, not 0-10


def test_validation_points_are_marked_and_the_axis_spans_the_run(qtbot, pairs):
    page = make_page(qtbot, prepare=fake_run(steps=1), process_factory=ScriptedProcess)
    page.train()
    run_to_end(qtbot, page)
    assert page.chart.eval.pointsVisible() and page.chart.train.pointsVisible()  # 10 steps: each one a dot
    low, high = _x_range(page.chart)
    assert low < 1 and 10 < high <= 10.5


def test_a_new_run_after_a_stopped_one_starts_a_fresh_chart(qtbot, pairs):
    page = make_page(qtbot, prepare=fake_run(steps=400))
    page.train()
    qtbot.waitUntil(lambda: len(page.chart.points()) >= 2, timeout=20_000)
    page.cancel_button.click()
    page.cancel_button.click()
    run_to_end(qtbot, page)
    page.prepare_fn = fake_run(steps=3)
    page.train()
    run_to_end(qtbot, page)
    assert [x for x, _ in page.chart.points()] == [1, 2, 3] and _x_range(page.chart)[1] <= 3.5


def _stopped_run_with_log(steps_logged: int, checkpoint: bool) -> Path:
    """A run of 400 steps killed after ``steps_logged`` that logged its losses (as the real worker does)."""
    run_dir = with_fake(new_training_run(data_dir(), machine(BIG)), steps=400)
    log = MetricsLog(run_dir / "metrics.jsonl")
    log.write({"event": "start", "step": 0, "total_steps": 400})
    for step in range(1, steps_logged + 1):
        log.write({"event": "step", "step": step, "total_steps": 400, "loss": 2.0 / step})
    if checkpoint:
        save_step(run_dir, steps_logged)
    jobs.write_status(run_dir, "running", pid=_dead_pid())  # killed with the app: nobody wrote how it ended
    return run_dir


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_after_a_restart_the_chart_shows_a_stopped_run_only_when_resume_continues_it(qtbot, pairs):
    run_dir = _stopped_run_with_log(3, checkpoint=False)
    page = make_page(qtbot)
    assert page.chart.points() == [] and _x_range(page.chart)[1] < 400  # nothing of a run no Resume continues
    assert not page.resume_button.isVisibleTo(page)
    save_step(run_dir, 3)
    page = make_page(qtbot)
    assert [x for x, _ in page.chart.points()] == [1, 2, 3] and _x_range(page.chart)[1] >= 400
    assert run_dir.name in page.chart.chart().title() and page.resume_button.isVisibleTo(page)


def test_the_selected_adapters_curve_is_shown_from_its_training_log(qtbot, pairs):
    page = make_page(qtbot, prepare=fake_run(steps=1), process_factory=ScriptedProcess)
    page.train()
    run_to_end(qtbot, page)
    (adapter,) = list_adapters(pairs)
    shutil.rmtree(page.run_dir / "checkpoints", ignore_errors=True)
    (page.run_dir / "metrics.jsonl").unlink()  # the run folder's log is gone: the adapter kept its own
    page = make_page(qtbot)  # the app started again
    assert page.chart.points() == []
    page.adapters.table.selectRow(0)
    assert page.chart.points() == [(s, pytest.approx(3.0 - 0.2 * s)) for s in range(1, 11)]
    assert page.chart.points("eval") == [(5, pytest.approx(2.0)), (10, pytest.approx(1.5))]
    assert page.chart.chart().title() == f"How {adapter['name']} trained"
    register_adapter(pairs, "older")
    page.adapters.refresh(select="older")
    assert page.chart.points() == [] and "No training log was kept for older" in page.chart.chart().title()


# --- one estimate -------------------------------------------------------------------------------------------


def _time_texts(page: TrainPage) -> list[str]:
    """Every visible label on the page that speaks of minutes, seconds or hours to train."""
    from PySide6.QtWidgets import QLabel

    found = []
    for label in page.findChildren(QLabel):
        text = label.text()
        if label.isVisibleTo(page) and re.search(
            r"\d+m \d\ds|\d+\.\ds|\d+h \d\dm|[\d.]+ hours|under a minute", text, re.I
        ):
            found.append(text)
    return found


class StepSpy(QObject):
    def __init__(self, look):
        super().__init__()
        self.look = look

    @Slot(object)
    def on_event(self, event) -> None:
        if isinstance(event, Step):
            self.look()


def test_one_estimate_for_the_chosen_duration_then_the_measured_one(qtbot, pairs):
    page = make_page(qtbot, preflight=machine(BIG, rate=0.5), process_factory=ScriptedProcess)
    tokens = jobs.estimate_tokens(load_examples(pairs))
    full = page.estimate_label.text()
    assert full == (f"Full: about {format_duration(3 * tokens / 0.5)} ({tokens:,} tokens per pass at 0.5 tokens/s, "
                    "measured on this machine). A GPU would take minutes.")  # fmt: skip
    assert _time_texts(page) == [full]  # preflight's own note of the CPU's time is not a second estimate
    page.duration_box.setCurrentIndex(page.duration_box.findData("one-pass"))
    qtbot.waitUntil(lambda: page.estimate_label.text().startswith("One pass: "), timeout=20_000)
    assert f"about {format_duration(tokens / 0.5)} (" in page.estimate_label.text()
    seen: list = []
    page.train()
    spy = StepSpy(lambda: seen.append((page.estimate_label.text(), _time_texts(page))))
    page.train_worker.event.connect(spy.on_event)  # a QObject on this thread: called after the page's slot
    run_to_end(qtbot, page)
    assert seen and all(times == [text] for text, times in seen)  # one estimate on the page at every step
    assert seen[-1][0] == "Under a minute left (1,500 tokens/s, measured).", seen


def test_the_duration_chosen_sets_the_runs_passes_and_steps(qtbot, pairs):
    from trainer.config import QUICK_TEST_STEPS, TrainConfig

    page = make_page(qtbot, process_factory=ScriptedProcess)
    expected = {"quick": (1, QUICK_TEST_STEPS), "one-pass": (1, None), "full": (TrainConfig().epochs, None)}
    for key, (epochs, max_steps) in expected.items():
        page.duration_box.setCurrentIndex(page.duration_box.findData(key))
        page.train()
        run_to_end(qtbot, page)
        cfg = TrainConfig.load(page.run_dir / "config.json")
        assert (cfg.epochs, cfg.max_steps) == (epochs, max_steps), key
