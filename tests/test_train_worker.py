"""The training process: events over the pipe, graceful cancel and resume, crashes and errors reported.

These run the real worker process (``tests/fake_trainer.py``: trainer.worker with a stand-in trainer).
"""

from __future__ import annotations

import json
import os

import psutil
import pytest
from fake_trainer import with_fake

from assistant.paths import data_dir
from trainer import jobs
from trainer.base_model import BaseIdentity
from trainer.config import TrainConfig
from trainer.data import Example
from trainer.process import ALLOCATOR_ENV, TrainingFailed, TrainingProcess
from trainer.worker import NICENESS

BASE = BaseIdentity("/models/base.gguf", "hf", 1, "00" * 32, "base")  # "hf": no GGUF header to read


ONE = (Example("a", "", "b"),)


def _run(fake, examples=ONE, cfg=None):
    return with_fake(jobs.new_run(data_dir(), cfg or TrainConfig(), list(examples), BASE, "style-x"), **fake)


def test_events_arrive_in_order_and_the_run_is_marked_done():
    run = _run({"steps": 3, "delay": 0})
    proc = TrainingProcess(run)
    events = list(proc.events())
    assert [e["event"] for e in events] == ["start", "step", "step", "step", "finished"]
    assert [e["step"] for e in events if e["event"] == "step"] == [1, 2, 3]
    assert proc.result()["status"] == "done"
    assert jobs.read_status(run)["status"] == "done" and jobs.resumable_run(data_dir()) is None


def test_cancel_stops_gracefully_and_resume_continues():
    run = _run({"steps": 40, "delay": 0.05})
    proc = TrainingProcess(run)
    seen = []
    for event in proc.events():
        seen.append(event)
        if event.get("step") == 2:
            proc.cancel()
    assert seen[-1]["status"] == "cancelled" and seen[-2]["event"] == "checkpoint"
    stopped_at = seen[-1]["steps"]
    assert 2 <= stopped_at < 40
    assert jobs.resumable_run(data_dir()) == run
    resumed = TrainingProcess(run, resume=True)
    steps = [e["step"] for e in resumed.events() if e["event"] == "step"]
    assert steps[0] == stopped_at + 1 and steps[-1] == 40
    assert resumed.result()["status"] == "done"


def _worker_environment(run):
    """The environment the worker process runs with (read while it trains), after which it is cancelled."""
    proc = TrainingProcess(run)
    env = None
    for event in proc.events():
        if event.get("event") == "step" and env is None:
            env = psutil.Process(proc.proc.pid).environ()
            proc.cancel()
    return env


@pytest.fixture
def no_allocator_env(monkeypatch):
    """The app's environment without any allocator setting of the person's own."""
    for key in ALLOCATOR_ENV:
        monkeypatch.delenv(key, raising=False)
    return monkeypatch


def test_a_run_with_gradient_checkpointing_gets_the_allocator_settings_unless_the_person_set_their_own(
    no_allocator_env,
):
    """glibc's default lets a training step's heap fragment (BENCHMARKS.md): the worker maps large blocks itself."""
    env = _worker_environment(_run({"steps": 40, "delay": 0.05}))
    assert ALLOCATOR_ENV == {"MALLOC_MMAP_THRESHOLD_": "131072", "THP_MEM_ALLOC_ENABLE": "1"}
    assert {k: env.get(k) for k in ALLOCATOR_ENV} == ALLOCATOR_ENV
    no_allocator_env.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert _worker_environment(_run({"steps": 40, "delay": 0.05}))["MALLOC_MMAP_THRESHOLD_"] == "65536"


def test_a_run_without_gradient_checkpointing_keeps_the_allocators_default(no_allocator_env):
    """It is faster so (BENCHMARKS.md), and preflight counts the heap it grows."""
    env = _worker_environment(_run({"steps": 40, "delay": 0.05}, cfg=TrainConfig(gradient_checkpointing=False)))
    assert env is not None and not set(ALLOCATOR_ENV) & set(env)


def test_a_process_that_dies_is_reported_not_hung():
    run = _run({"steps": 5, "delay": 0, "crash_at": 2})
    proc = TrainingProcess(run)
    events = list(proc.events())
    assert events[-1]["event"] == "crashed" and events[-1]["code"] == 3
    with pytest.raises(TrainingFailed, match=r"stopped \(exit code 3\)\. Details: .*worker\.log") as failed:
        proc.result()
    assert failed.value.cli == "Continue with: mailvoice train --resume"  # the app offers its Resume button
    assert jobs.resumable_run(data_dir()) == run  # status says running, but nobody runs it


def test_a_user_error_in_the_worker_comes_back_as_its_message():
    proc = TrainingProcess(_run({"steps": 5, "delay": 0, "fail_at": 1}))
    events = list(proc.events())
    assert events[-1] == {"event": "error", "kind": "user", "message": "the fake trainer failed as asked"}
    with pytest.raises(TrainingFailed, match="failed as asked"):
        proc.result()


def test_a_full_disk_is_a_message_to_act_on_and_the_run_resumes():
    run = _run({"steps": 5, "delay": 0, "disk_full_at": 3})
    events = list(TrainingProcess(run).events())
    error = events[-1]
    assert error["event"] == "error" and error["kind"] == "user", error
    assert error["message"].startswith("The disk is full (writing ")
    assert "Free some space, then resume" in error["message"]
    assert jobs.read_status(run)["status"] == "failed" and jobs.resumable_run(data_dir()) == run
    job = json.loads((run / "job.json").read_text())
    job["fake"].pop("disk_full_at")  # space was freed
    (run / "job.json").write_text(json.dumps(job))
    resumed = TrainingProcess(run, resume=True)
    assert [e["step"] for e in resumed.events() if e["event"] == "step"] == [3, 4, 5]
    assert resumed.result()["status"] == "done"


def test_run_folder_holds_config_job_and_frozen_data():
    run = _run({"steps": 1}, [Example("x", "ctx", "y", "validation"), Example("a", "", "b")])
    assert TrainConfig.load(run / "config.json") == TrainConfig()
    job = json.loads((run / "job.json").read_text())
    assert job["adapter_name"] == "style-x" and job["base"]["sha256"] == "00" * 32
    lines = (run / "data.jsonl").read_text().splitlines()
    assert json.loads(lines[0]) == {"instruction": "x", "input": "ctx", "output": "y", "split": "validation"}


def test_stdout_noise_cannot_break_the_pipe():
    run = _run({"steps": 1, "delay": 0, "noise": True})
    proc = TrainingProcess(run)
    assert [e["event"] for e in proc.events()] == ["start", "step", "finished"]
    log = (run / "worker.log").read_text()
    assert "python noise on stdout" in log and "native noise on fd 1" in log


def test_a_kill_by_the_app_is_recorded_as_the_persons_stop():
    run = _run({"steps": 40, "delay": 0.05})
    proc = TrainingProcess(run)
    events = []
    for event in proc.events():
        events.append(event)
        if event.get("step") == 3 and event["event"] == "step":
            proc.kill()  # Stop now
    final = events[-1]
    assert final["event"] == "stopped" and final["by"] == "user" and final["step"] == 3, final
    assert final["checkpoint"] == jobs.checkpoint_step(run) and final["message"] == "Stopped by you at step 3."
    assert proc.result() is final  # a stop is no failure
    status = jobs.read_status(run)
    assert status["status"] == "stopped" and status["by"] == "user" and status["step"] == 3, status
    assert jobs.resumable_run(data_dir()) == run


def test_when_the_app_that_started_it_is_gone_the_run_stops_at_a_checkpoint_and_resumes():
    """The app crashed or was closed mid-run: no one reads the events any more. The worker (in a session of its own,
    so the app's end does not reach it) stops as a cancel stops it, and says why in the run's status."""
    run = _run({"steps": 400, "delay": 0.02})
    proc = TrainingProcess(run)
    for event in proc.events():
        if event["event"] == "step":
            proc.proc.stdout.close()  # the app's end of the pipe, gone with the app
            break
    assert proc.wait(timeout=30) == 0
    status = jobs.read_status(run)
    assert status["status"] == "cancelled" and "app" in status["message"], status
    stopped_at = jobs.status_result(status).steps
    assert 1 <= stopped_at < 400 and jobs.checkpoint_step(run) == stopped_at
    assert f"step {stopped_at}" in status["message"] and "Traceback" not in (run / "worker.log").read_text()
    assert jobs.resumable_run(data_dir()) == run
    resumed = TrainingProcess(run, resume=True)
    steps = [e["step"] for e in resumed.events() if e["event"] == "step"]
    assert steps[0] == stopped_at + 1 and steps[-1] == 400 and resumed.result()["status"] == "done"


def test_a_process_that_dies_on_its_own_is_recorded_as_crashed():
    run = _run({"steps": 5, "delay": 0, "crash_at": 2})
    events = list(TrainingProcess(run).events())
    assert events[-1]["event"] == "crashed"
    status = jobs.read_status(run)
    assert status["status"] == "crashed" and status["code"] == 3 and status["step"] == 1, status
    assert jobs.resumable_run(data_dir()) == run and jobs.checkpoint_step(run) == 1


def test_a_kill_after_the_process_recorded_its_end_changes_nothing():
    run = _run({"steps": 2, "delay": 0})
    proc = TrainingProcess(run)
    assert list(proc.events())[-1]["status"] == "done"
    proc.kill()  # too late: it finished
    assert jobs.read_status(run)["status"] == "done" and not jobs.mark_ended(run, "stopped")


def test_checkpoint_step_reads_the_newest_checkpoint_folder(tmp_path):
    assert jobs.checkpoint_step(tmp_path) is None
    for step in (50, 100):
        (tmp_path / "checkpoints" / f"step-{step:08d}").mkdir(parents=True)
    assert jobs.checkpoint_step(tmp_path) == 100


@pytest.mark.skipif(not hasattr(os, "nice"), reason="POSIX nice values")
def test_the_training_process_runs_below_the_app_s_cpu_priority():
    proc = TrainingProcess(_run({"steps": 40, "delay": 0.05}))
    for event in proc.events():
        if event.get("step") == 1:
            seen = psutil.Process(proc.proc.pid).nice()
            proc.cancel()
    assert seen == min(19, os.nice(0) + NICENESS) > os.nice(0)
