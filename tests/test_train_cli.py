"""The training commands: train, adapters, use, preflight (fast: no training here, see test_train_e2e)."""

from __future__ import annotations

import json
import os
import re
import signal

import click
import pytest
from click.testing import CliRunner
from fake_trainer import with_fake
from test_train_registry import _register

from assistant.cli import train as train_cli
from assistant.paths import data_dir
from assistant.store import open_store

GROUP = click.Group("mailvoice", commands={c.name: c for c in train_cli.COMMANDS})


def run(*args: str) -> tuple[int, dict | str, str]:
    result = CliRunner().invoke(GROUP, list(args))
    try:
        return result.exit_code, json.loads(result.stdout), result.stderr
    except json.JSONDecodeError:
        return result.exit_code, result.stdout, result.stderr


def test_commands_are_named_as_in_the_contract():
    assert [c.name for c in train_cli.COMMANDS] == ["train", "adapters", "use", "preflight"]


def test_adapters_and_use(tmp_path):
    db = open_store(data_dir())
    _register(db, tmp_path, "style-a")
    code, out, _ = run("adapters", "--json")
    assert code == 0 and [a["name"] for a in out["adapters"]] == ["style-a"]
    assert out["adapters"][0]["metrics"]["steps"] == 5
    assert run("use", "style-a", "--json")[:2] == (0, {"adapter": "style-a"})
    code, text, _ = run("adapters")
    assert code == 0 and text.startswith("* style-a")
    assert run("use", "none", "--json")[:2] == (0, {"adapter": None})
    code, _, err = run("use", "nope")
    assert code == 1 and "No adapter named 'nope'" in err


def test_no_adapters_yet():
    code, text, _ = run("adapters")
    assert code == 0 and "mailvoice train" in text


def test_preflight_json_for_the_embedded_model():
    code, out, _ = run("preflight", "--json")
    assert code == 0, out
    assert out["hardware"]["device"] in ("cpu", "cuda")
    assert out["base"]["layers"] == 30 and out["memory_gb"]["total"] > 0
    assert set(out) >= {"ok", "recommended", "hours", "tokens_per_second", "problems", "advice"}


def test_preflight_human_text_names_device_base_and_memory(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"instruction": "a", "output": "b " * 400}) + "\n")
    code, text, _ = run("preflight", "--data", str(data))
    assert code == 0
    assert "Device" in text and "Memory" in text and "Time" in text


def test_missing_base_is_exit_1_with_what_to_do(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"instruction": "a", "output": "b"}) + "\n")
    code, _, err = run("train", "--base", str(tmp_path / "missing.gguf"), "--data", str(data))
    assert code == 1 and "does not exist" in err and "GGUF" in err


def test_train_without_pairs_says_how_to_get_them():
    code, _, err = run("train")
    assert code == 1 and "mailvoice pairs build" in err


def test_resume_without_a_stopped_run():
    code, _, err = run("train", "--resume")
    assert code == 1 and "No stopped run" in err


def test_resume_takes_no_other_options():
    code, _, err = run("train", "--resume", "--lr", "1e-3")
    assert code == 2 and "--resume" in err


class StubProcess:
    """Stands in for TrainingProcess: replays events; the user presses Ctrl-C after step 1."""

    def __init__(self, events):
        self._events, self.cancelled, self.killed = events, False, False

    def events(self):
        for event in self._events:
            yield event
            if event["event"] == "step":
                os.kill(os.getpid(), signal.SIGINT)  # as a terminal's Ctrl-C would

    def cancel(self):
        self.cancelled = True

    def kill(self):
        self.killed = True

    def result(self):
        return self._events[-1]


def test_ctrl_c_asks_the_worker_to_stop_and_the_last_events_still_arrive(capsys):
    events = [
        {"event": "step", "step": 1, "total_steps": 9, "loss": 2.0, "eta": 8.0},
        {"event": "checkpoint", "step": 1},
        {"event": "finished", "status": "cancelled", "result": {"steps": 1}},
    ]
    proc = StubProcess(events)
    before = signal.getsignal(signal.SIGINT)
    assert train_cli._follow(proc)["status"] == "cancelled"
    assert proc.cancelled and not proc.killed and "Stopping after this step" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is before


@pytest.mark.parametrize("setting", [{"lora_r": 4}, {"max_seq_len": 256, "cpu_threads": 1}])
def test_settings_sit_between_defaults_and_options(setting):
    from assistant.cli.common import Context
    from assistant.store.db import set_setting

    ctx = Context(None, False)
    set_setting(ctx.db, "train", setting)
    cfg = train_cli.resolve_config(ctx, lora_r=None, learning_rate=1e-3)
    assert all(getattr(cfg, k) == v for k, v in setting.items())
    assert cfg.learning_rate == 1e-3 and cfg.base.endswith(".gguf")
    assert train_cli.resolve_config(ctx, lora_r=2).lora_r == 2


def test_stop_now_in_the_terminal_is_a_stop_not_a_crash(monkeypatch):
    """A second Ctrl-C kills the worker: the command says the person stopped it, where, and how to go on."""
    from test_train_worker import BASE

    from trainer import jobs
    from trainer.config import TrainConfig
    from trainer.data import Example
    from trainer.process import TrainingProcess

    class PressedTwice(TrainingProcess):
        def events(self):
            for event in super().events():
                if event["event"] == "step" and event["step"] == 2:
                    self.kill()
                yield event

    monkeypatch.setattr("trainer.process.TrainingProcess", PressedTwice)
    run_dir = with_fake(jobs.new_run(data_dir(), TrainConfig(), [Example("a", "", "b")], BASE, "style-x"), steps=40)
    code, _, err = run("train", "--resume")
    assert code == 130, err
    # The stand-in trainer saves its step just after reporting it: the kill may come before or after that.
    assert re.search(r"Stopped by you at step 2; continue from the checkpoint of step [12] with: mailvoice train "
                     r"--resume", err), err  # fmt: skip
    assert "memory" not in err and "Trained" not in err
    assert jobs.read_status(run_dir)["status"] == "stopped"


@pytest.mark.parametrize("as_json", [False, True])
def test_a_finished_run_shows_the_estimate_beside_the_time_it_took(tmp_path, capsys, as_json):
    from assistant.cli.common import Context
    from trainer.events import Finished

    finished = Finished(status="done", steps=10, train_loss=1.0, eval_loss=1.2, seconds=95.0)
    train_cli._report(Context(str(tmp_path), as_json), finished, None, tmp_path, estimate=120.0)
    out = capsys.readouterr().out
    if as_json:
        payload = json.loads(out)
        assert payload["estimated_seconds"] == 120.0 and payload["seconds"] == 95.0
    else:
        assert "Estimated before the start: ~2m 00s; took 1m 35s." in out, out
    train_cli._report(Context(str(tmp_path), False), finished, None, tmp_path)  # resumed: no estimate
    assert "(no estimate: a resumed run)" in capsys.readouterr().out


def test_the_estimate_is_made_again_from_the_prompts_as_written(capsys):
    from test_train_worker import BASE

    from trainer import jobs
    from trainer.config import TrainConfig
    from trainer.data import Example

    written = [{"role": "system", "content": "s" * 400}, {"role": "user", "content": "u" * 400}]
    examples = [Example("a", "", "b" * 400, messages=written) for _ in range(10)]
    examples.append(Example("a", "", "b" * 400, split="validation", messages=written))  # not trained on
    run_dir = jobs.new_run(data_dir(), TrainConfig(epochs=2), examples, BASE, "style-x")
    seconds = train_cli._written_estimate(run_dir, rate=10.0)
    tokens = 10 * (800 // 4 + 400 // 4 + 20)
    assert jobs.written_tokens(run_dir) == (tokens, 10)
    assert seconds == pytest.approx(tokens * 2 / 10.0)
    assert f"{tokens:,} tokens per epoch as the prompts were written" in capsys.readouterr().err
