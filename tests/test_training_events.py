"""Training events: every kind round-trips through its JSON, unknown and incomplete ones are tolerated, and the
status.json of a finished run is read in its flat form and in the nested form earlier versions wrote."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainer import jobs
from trainer.events import (
    KINDS,
    Checkpoint,
    Crashed,
    Done,
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
    Unknown,
    parse,
)
from trainer.metrics import MetricsLog

EXPORTED = Exported(path="/a/adapter.gguf", architecture="llama", tensors=420, rank=8, alpha=16.0, size_bytes=1234)
PARITY = Parity(agreement=0.98, base_agreement=0.97, adapter_changed=0.2, positions=300, examples=4,
                decisive_agreement=0.99, nf4_agreement=None, passed=True, threshold=0.95)  # fmt: skip
RESULT = {"status": "done", "steps": 9, "total_steps": 9, "train_loss": 1.2, "eval_loss": 1.5, "best_step": 6,
          "seconds": 12.5, "adapter_dir": "/run/best", "tokens_per_second": 800.0}  # fmt: skip

EVERY_KIND: list[Event] = [
    Phase(phase="dequantize", message="Preparing base.gguf (once)", time=1.5),
    Phase(phase="merge", fraction=0.25),
    Start(
        step=0,
        total_steps=9,
        trainable_parameters=2_442_240,
        device="cpu",
        world_size=1,
        data={"train": 8, "validation": 2},
        time=2.0,
    ),
    Step(
        step=1, total_steps=9, epoch=0.333, loss=2.5, lr=2e-4, tokens_per_second=812.5, elapsed=1.25, eta=10.0, time=3.0
    ),
    Eval(step=3, eval_loss=1.9, best=True, time=4.0),
    Checkpoint(step=3, path="/run/checkpoints/step-00000003", time=5.0),
    Done(**RESULT, time=6.0),
    EXPORTED,
    PARITY,
    Finished(**RESULT, export=EXPORTED, parity=PARITY),
    Finished(status="cancelled", steps=4, total_steps=9),
    Error(kind="user", message="No training examples."),
    Error(kind="bug", message="ValueError: no", traceback="Traceback (most recent call last): ..."),
    Stopped(by="user", step=3, checkpoint=2, message="Stopped by you at step 3."),
    Stopped(step=1, checkpoint=None, message="Stopped by you at step 1."),
    Crashed(code=-9, message="The training process stopped (killed).", log="/run/worker.log", log_tail="..."),
]


@pytest.mark.parametrize("event", EVERY_KIND, ids=lambda e: type(e).__name__)
def test_every_kind_round_trips_through_its_json(event):
    wire = event.to_json()
    assert wire["event"] == event.event and KINDS[event.event] is type(event)
    assert parse(json.loads(json.dumps(wire))) == event


def test_every_kind_is_covered():
    assert {type(e) for e in EVERY_KIND} == set(KINDS.values())


def test_the_wire_dicts_are_the_ones_producers_always_wrote():
    assert Error(kind="user", message="full").to_json() == {"event": "error", "kind": "user", "message": "full"}
    assert Step(step=2, total_steps=5, loss=0.5, eta=0.1).to_json() == {
        "event": "step", "step": 2, "total_steps": 5, "loss": 0.5, "tokens_per_second": None, "eta": 0.1}  # fmt: skip
    assert Phase(phase="merge", fraction=1.0).to_json() == {"event": "phase", "phase": "merge", "fraction": 1.0}
    stopped = {"event": "stopped", "status": "stopped", "by": "user", "step": 3, "checkpoint": None, "message": "m"}
    assert Stopped(step=3, checkpoint=None, message="m").to_json() == stopped
    assert Done(**RESULT, time=6.0).to_json() == {"event": "done", **RESULT, "time": 6.0}
    assert Parity(**PARITY.fields_json()) == PARITY  # as the worker builds it from ParityReport.to_json()


def test_the_finished_result_is_flat():
    wire = Finished(**RESULT, export=EXPORTED).to_json()
    assert "result" not in wire and wire["steps"] == 9 and wire["tokens_per_second"] == 800.0
    assert wire["export"] == EXPORTED.fields_json() and "event" not in wire["export"] and "parity" not in wire


def test_an_unknown_kind_is_kept_not_raised():
    raw = {"event": "warp", "speed": 9}
    event = parse(raw)
    assert event == Unknown(data=raw) and event.to_json() == raw
    assert parse({"no": "event"}) == Unknown(data={"no": "event"})
    assert isinstance(parse(["not", "a", "dict"]), Unknown)


def test_an_event_without_a_field_it_needs_is_unknown():
    assert parse({"event": "step", "loss": 1.0}) == Unknown(data={"event": "step", "loss": 1.0})
    assert parse({"event": "eval", "step": 3}) == Unknown(data={"event": "eval", "step": 3})


def test_missing_optional_fields_read_as_none_and_extra_ones_are_ignored():
    step = parse({"event": "step", "step": 1, "total_steps": 5, "loss": 1.0, "someday": "new"})
    assert step == Step(step=1, total_steps=5, loss=1.0)
    assert step.eta is None and step.tokens_per_second is None and step.time is None
    assert parse({"event": "start", "step": 0, "total_steps": 5}) == Start(step=0, total_steps=5)
    assert parse({"event": "checkpoint", "step": 2}) == Checkpoint(step=2)
    assert parse({"event": "phase", "phase": "resume"}) == Phase(phase="resume")
    assert parse({"event": "eval", "step": 3, "eval_loss": 1.0}).best is False
    error = parse({"event": "error", "message": "oops"})
    assert error == Error(kind="user", message="oops") and error.traceback is None
    finished = parse({"event": "finished", "status": "cancelled", "steps": 2})
    assert finished == Finished(status="cancelled", steps=2) and finished.export is None
    assert parse({"event": "crashed", "code": 3}) == Crashed(code=3)


def test_a_finished_event_of_an_earlier_version_reads_flat():
    old = {"event": "finished", "status": "done", "result": RESULT, "export": EXPORTED.fields_json(),
           "parity": PARITY.fields_json()}  # fmt: skip
    assert parse(old) == Finished(**RESULT, export=EXPORTED, parity=PARITY)
    stopped = {"event": "stopped", "status": "stopped", "by": "user", "step": 3, "checkpoint": 2,
               "result": {"steps": 3}, "message": "Stopped by you at step 3."}  # fmt: skip
    assert parse(stopped).steps == 3


def _run_dir(root: Path, sha: str, status: dict) -> Path:
    run_dir = jobs.runs_root(root) / "20250101-000000"
    run_dir.mkdir(parents=True)
    (run_dir / "job.json").write_text(json.dumps({"base": {"sha256": sha}}))
    (run_dir / "status.json").write_text(json.dumps(status))
    return run_dir


def test_an_old_nested_status_json_is_read(tmp_path):
    """status.json as earlier versions wrote it: the finished event's dict, its result nested once more."""
    old = {"status": "done", "updated_at": "2025-01-01T00:00:00+00:00",
           "result": {"status": "done", "result": RESULT, "export": EXPORTED.fields_json(),
                      "parity": PARITY.fields_json()}}  # fmt: skip
    run_dir = _run_dir(tmp_path, "ab" * 32, old)
    result = jobs.status_result(jobs.read_status(run_dir))
    assert result == Finished(**RESULT, export=EXPORTED, parity=PARITY)
    assert result.steps == 9 and result.export.path == "/a/adapter.gguf"
    assert jobs.measured_rate(tmp_path, "ab" * 32) == 800.0
    cancelled = {"status": "cancelled", "updated_at": "2025-01-01T00:00:00+00:00",
                 "result": {"status": "cancelled", "result": {"steps": 4, "total_steps": 9}}}  # fmt: skip
    (run_dir / "status.json").write_text(json.dumps(cancelled))
    assert jobs.status_result(jobs.read_status(run_dir)) == Finished(status="cancelled", steps=4, total_steps=9)


def test_the_status_json_written_now_is_flat_and_read_back(tmp_path):
    finished = Finished(**RESULT, export=EXPORTED)
    run_dir = _run_dir(tmp_path, "cd" * 32, {})
    jobs.write_status(run_dir, finished.status, result=finished.fields_json())  # as the worker writes it
    status = jobs.read_status(run_dir)
    assert status["result"]["steps"] == 9 and "result" not in status["result"]
    assert jobs.status_result(status) == finished
    assert jobs.measured_rate(tmp_path, "cd" * 32) == 800.0


def test_the_rate_measured_is_that_of_a_run_trained_with_the_same_gradient_checkpointing(tmp_path):
    """On a CPU a run without checkpointing is faster: its rate says nothing of one with it."""
    finished = Finished(**RESULT, export=EXPORTED)
    run_dir = _run_dir(tmp_path, "ef" * 32, {})
    jobs.write_status(run_dir, finished.status, result=finished.fields_json())
    (run_dir / "config.json").write_text(json.dumps({"gradient_checkpointing": False}))
    assert jobs.measured_rate(tmp_path, "ef" * 32, gradient_checkpointing=False) == 800.0
    assert jobs.measured_rate(tmp_path, "ef" * 32, gradient_checkpointing=True) is None
    (run_dir / "config.json").write_text("{not json")  # unreadable: taken as the default, with checkpointing
    assert jobs.measured_rate(tmp_path, "ef" * 32, gradient_checkpointing=True) == 800.0


def test_a_status_without_a_result_has_none(tmp_path):
    assert jobs.status_result({"status": "stopped", "by": "user", "step": 3}) is None
    assert jobs.status_result({"status": "unknown"}) is None
    assert jobs.status_result({"status": "done", "result": {"no": "status"}}) is None


def test_only_a_finished_done_run_with_an_export_registers(tmp_path):
    for final in (Finished(status="cancelled", steps=2), Finished(**RESULT), Stopped(step=1, checkpoint=None),
                  {"event": "error", "kind": "user", "message": "no"}, {}):  # fmt: skip
        assert jobs.finish(None, tmp_path, tmp_path, final) is None  # never reaches the store


def test_the_metrics_log_keeps_the_training_kinds_and_reads_them_typed(tmp_path):
    log = MetricsLog(tmp_path / "metrics.jsonl")
    log.write(Start(step=0, total_steps=2, time=1.0))
    log.write({"event": "step", "step": 1, "total_steps": 2, "loss": 2.0})  # a dict, as older callers pass
    log.write(Phase(phase="resume", message="Resumed at step 1"))  # progress: not kept
    log.write(Eval(step=1, eval_loss=1.5, best=True))
    log.write({"event": "warp"})
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [e["event"] for e in lines] == ["start", "step", "eval"]
    assert lines[1] == {"event": "step", "step": 1, "total_steps": 2, "loss": 2.0, "tokens_per_second": None}
    assert log.read() == [Start(step=0, total_steps=2, time=1.0), Step(step=1, total_steps=2, loss=2.0),
                          Eval(step=1, eval_loss=1.5, best=True)]  # fmt: skip
