"""Training killed (kill -9) at 20 seeded points, then resumed: the same losses, adapters and export as a clean run.

Loading the model takes most of a training process's start (about 13 s here), so 20 fresh processes would
cost minutes. The harness below (this file run as a script) loads it once, then forks one process per
session: each one continues from the newest checkpoint exactly as ``setup(resume=True)`` does after its own
load (``LoRARecipe._resume``), trains, exports the GGUF adapter as the worker does, and is SIGKILLed at one
event: a step, an evaluation, a checkpoint, or one file operation inside writing a checkpoint, the best or
final adapter, the metrics log or the export (a write lands after its file was truncated; a folder delete
part-way through). The 20 points are drawn from all events of a clean run of the same fork and resumed one
after another in one run folder. After every kill each checkpoint folder left behind must load; at the end
the run must match the clean one exactly. A second test kills the real worker process
(``python -m trainer.worker``) and resumes it the way ``mailvoice train --resume`` does.
"""

from __future__ import annotations

import io
import json
import os
import pathlib
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from train_rows import ROWS

pytestmark = pytest.mark.slow

KILL_SEED = 3041
TRIES = 20


def tiny_config(base: str) -> dict:
    """A few cheap steps that still pass through evaluations, best-adapter saves, checkpoints and pruning."""
    from trainer.config import TrainConfig

    cfg = TrainConfig(
        base=base,
        max_steps=7,
        epochs=10,
        batch_size=1,
        grad_accum=1,
        max_seq_len=128,
        learning_rate=3e-3,
        lora_r=4,
        lora_alpha=8,
        target_modules=("q_proj", "v_proj"),
        gradient_checkpointing=False,
        eval_every=3,
        checkpoint_every=2,
        keep_checkpoints=2,
        cpu_threads=1,
        seed=7,
        parity=False,
    )
    return cfg.to_json()


# --- the harness: runs in its own process -------------------------------------------------------------------


class Events:
    """The kill switch of a forked session, and the log of its events (which outlives the kill)."""

    def __init__(self) -> None:
        import killpoint

        self.switch = killpoint.Switch()
        self.fd: int | None = None

    def open(self, log: Path) -> None:
        self.fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)

    def tick(self, label: str) -> None:
        if self.fd is None:
            return  # the harness itself, checking what a session left
        os.write(self.fd, (label + "\n").encode())
        self.switch.tick()

    def session(self, fn, log: Path, at: int) -> tuple[int, list[str]]:
        """Run ``fn`` forked, killed at its event ``at`` (0: never): (exit status, its events)."""
        import killpoint

        log.unlink(missing_ok=True)

        def armed() -> None:
            self.open(log)
            fn()

        code = killpoint.run_forked(armed, self.switch, at)
        return code, log.read_text().splitlines() if log.exists() else []


def instrument(tick) -> None:
    """Make every file operation of writing checkpoints, adapters, the metrics log and the export an event."""
    import safetensors.torch
    import torch

    from trainer import checkpoint

    def ticking(label, fn):
        def call(*args, **kwargs):
            tick(label)
            return fn(*args, **kwargs)

        return call

    torch.save = ticking("torch.save", torch.save)
    safetensors.torch.save_file = ticking("save_file", safetensors.torch.save_file)
    checkpoint._fsync = ticking("fsync", checkpoint._fsync)
    checkpoint.prune = ticking("prune", checkpoint.prune)
    pathlib.Path.rename = ticking("rename", pathlib.Path.rename)
    pathlib.Path.replace = ticking("replace", pathlib.Path.replace)
    rmtree = shutil.rmtree

    def write_text(path, data, encoding=None, errors=None, newline=None):
        with open(path, "w", encoding=io.text_encoding(encoding), errors=errors, newline=newline) as f:
            tick(f"write_text {path.name}")  # truncated, not yet written
            return f.write(data)

    def remove_tree(path, *args, **kwargs):
        folder = Path(path)
        if folder.is_dir():
            tick(f"rmtree {folder.name}")
            files = sorted(p for p in folder.iterdir() if p.is_file())
            if files:
                files[0].unlink()
                tick(f"rmtree {folder.name} part way")
        return rmtree(path, *args, **kwargs)

    pathlib.Path.write_text = write_text
    shutil.rmtree = remove_tree


def unloadable(parent: Path) -> list[str]:
    """Checkpoint folders in ``parent`` that a resume (or anyone) would refuse to load."""
    from trainer import checkpoint

    bad = []
    for folder in checkpoint.all_steps(parent):
        try:
            checkpoint.load(folder)
        except checkpoint.CheckpointError as exc:
            bad.append(f"{folder.name}: {exc}")
    return bad


class Harness:
    """One loaded recipe; sessions forked from it train in a run folder and can be killed at any event."""

    def __init__(self, spec: dict):
        from trainer.config import TrainConfig
        from trainer.data import from_rows
        from trainer.recipe import LoRARecipe

        self.events = Events()
        self.recipe = LoRARecipe(TrainConfig.from_json(spec["config"]), Path(spec["root"]) / "loaded",
                                 Path(spec["cache"]))  # fmt: skip
        self.recipe.setup(from_rows(ROWS))
        instrument(self.events.tick)

    def session(self, run_dir: Path, at: int) -> tuple[int, list[str]]:
        run_dir.mkdir(exist_ok=True)
        return self.events.session(lambda: self._train(run_dir), run_dir / "events.log", at)

    def _train(self, run_dir: Path) -> None:
        """What the worker does with ``--resume`` once the model is loaded: resume, train, export."""
        from trainer import export
        from trainer.metrics import MetricsLog

        recipe, tick = self.recipe, self.events.tick
        recipe.run_dir, recipe.metrics = run_dir, MetricsLog(run_dir / "metrics.jsonl")
        recipe.callback = lambda e: tick(f"{e['event']} {e.get('step')}") if e["event"] != "phase" else None
        recipe._resume()
        result = recipe.train()
        export.export_gguf(Path(result.adapter_dir), recipe.base_folder, run_dir / "adapter.gguf", "llama", "k")
        tick("exported")
        (run_dir / "result.json").write_bytes(json.dumps({"losses": recipe.losses, "steps": result.steps}).encode())


def spread(rng: random.Random, total: int, n: int) -> list[int]:
    """``n`` points in 1..total, one drawn at random from each of ``n`` equal stretches: the whole run is covered."""
    edges = [1 + total * i // n for i in range(n + 1)]
    return [rng.randrange(edges[i], max(edges[i] + 1, edges[i + 1])) for i in range(n)]


def checkpoint_kills(root: Path) -> list[dict]:
    """Kill at each event, one by one, of saving and pruning five checkpoints (one step saved twice)."""
    import torch

    from trainer import checkpoint

    events = Events()
    instrument(events.tick)

    def save_five(parent: Path) -> None:
        for step in (1, 2, 3, 3, 4):
            weights = {"w": torch.full((4,), float(step))}
            checkpoint.save(parent, step, weights, {"step": step}, {"last_epoch": step}, {"epoch": 0})
            checkpoint.prune(parent, 2)

    code, clean = events.session(lambda: save_five(root / "clean"), root / "clean.log", 0)
    assert code == 0 and len(checkpoint.all_steps(root / "clean")) == 2
    tries = []
    for at in range(1, len(clean) + 1):
        parent = root / f"kill-{at}"
        code, seen = events.session(lambda parent=parent: save_five(parent), root / f"kill-{at}.log", at)
        left = [p.name for p in checkpoint.all_steps(parent)]
        tries.append({"at": at, "code": code, "killed_at": seen[-1], "complete_before": "prune" in seen[:-1],
                      "left": left, "unloadable": unloadable(parent)})  # fmt: skip
    return tries


def harness(spec_path: str) -> None:
    from trainer import checkpoint

    spec = json.loads(Path(spec_path).read_text())
    root = Path(spec["root"])
    if spec.get("checkpoints_only"):
        Path(spec["out"]).write_text(json.dumps(checkpoint_kills(root)))
        return
    h = Harness(spec)
    code, reference = h.session(root / "clean", 0)
    out: dict = {"clean": {"code": code, "events": reference}, "tries": []}
    points = spread(random.Random(spec["seed"]), len(reference), spec["tries"])
    killed = root / "killed"
    for point in points:
        newest = checkpoint.latest(killed / "checkpoints")
        step = int(newest.name.split("-")[1]) if newest else 0
        # Event 1 of a session is its own (resetting or cutting the metrics log); its event k > 1 is event
        # start + k - 1 of the clean run, where start is where the checkpoint it resumes from was reported.
        start = reference.index(f"checkpoint {step}") + 1 if step else 1
        at = max(1, point - start + 1)
        code, events = h.session(killed, at)
        out["tries"].append({"point": point, "from_step": step, "at": at, "code": code,
                             "killed_at": events[-1] if events else "",
                             "unloadable": unloadable(killed / "checkpoints")})  # fmt: skip
        if code != -9:
            break
    code, events = h.session(killed, 0)
    out["resumed"] = {"code": code, "events": events}
    Path(spec["out"]).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    harness(sys.argv[1])


# --- the tests ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cache(request, tmp_path_factory) -> Path:
    cache = getattr(request.config, "cache", None)  # the prepared base, shared with tests/test_train_e2e.py
    return Path(cache.mkdir("mailvoice-train")) if cache is not None else tmp_path_factory.mktemp("cache")


def run_harness(spec: dict) -> subprocess.CompletedProcess:
    root = Path(spec["root"])
    (root / "spec.json").write_text(json.dumps(spec))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, __file__, str(root / "spec.json")], env=env, capture_output=True,
                          text=True, timeout=600)  # fmt: skip


def test_a_kill_at_any_event_of_saving_or_pruning_checkpoints_leaves_only_loadable_ones(tmp_path):
    done = run_harness({"root": str(tmp_path), "out": str(tmp_path / "out.json"), "checkpoints_only": True})
    assert done.returncode == 0, done.stderr[-3000:]
    tries = json.loads((tmp_path / "out.json").read_text())
    assert len(tries) > 60 and all(t["code"] == -9 for t in tries)
    assert {t["killed_at"].split()[0] for t in tries} >= {"save_file", "torch.save", "fsync", "write_text", "rename",
                                                          "prune", "rmtree"}  # fmt: skip
    assert any(t["killed_at"].endswith("part way") for t in tries)
    assert [t for t in tries if t["unloadable"]] == []
    assert [t for t in tries if t["complete_before"] and not t["left"]] == []  # once one was saved, one remains
    print(f"{len(tries)} kill points, each of the events of saving and pruning five checkpoints")


@pytest.fixture(scope="module")
def forked(tmp_path_factory, cache):
    from assistant.drafting.models import embedded_model_path

    root = tmp_path_factory.mktemp("kill-train")
    spec = {"root": str(root), "cache": str(cache), "config": tiny_config(str(embedded_model_path())),
            "seed": KILL_SEED, "tries": TRIES, "out": str(root / "out.json")}  # fmt: skip
    done = run_harness(spec)
    assert done.returncode == 0 and (root / "out.json").exists(), done.stderr[-3000:]
    return root, json.loads((root / "out.json").read_text()), done.stderr


def steps_logged(run_dir: Path) -> list[tuple]:
    """Every step and evaluation in metrics.jsonl: what the app's loss chart shows."""
    kept = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        e = json.loads(line)
        if e["event"] == "step":
            kept.append(("step", e["step"], e["loss"], e["lr"]))
        elif e["event"] == "eval":
            kept.append(("eval", e["step"], e["eval_loss"], e["best"]))
    return kept


def tensors(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path))


def same_tensors(a: dict, b: dict) -> bool:
    import torch

    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_20_kills_then_resume_give_the_clean_runs_losses_adapters_and_export(forked):
    root, out, log = forked
    clean, killed = root / "clean", root / "killed"
    assert out["clean"]["code"] == 0, log[-3000:]
    tries = out["tries"]
    assert len(tries) == TRIES and all(t["code"] == -9 for t in tries), (tries, log[-3000:])
    assert [t for t in tries if t["unloadable"]] == []  # no kill left a checkpoint that cannot be loaded
    assert out["resumed"]["code"] == 0, log[-3000:]
    # The kills spread over the whole run: from the first steps to the export, through checkpoint writes.
    where = [t["killed_at"] for t in tries]
    assert any(w.split()[0] in ("torch.save", "save_file", "fsync", "write_text", "rename") for w in where), where
    assert tries[-1]["from_step"] >= 6 and tries[0]["from_step"] == 0
    print("kill points:", [(t["point"], t["killed_at"], t["from_step"]) for t in tries])

    expected, got = (json.loads((d / "result.json").read_text()) for d in (clean, killed))
    assert got == expected and len(expected["losses"]) == expected["steps"] == 7
    assert steps_logged(killed) == steps_logged(clean)
    for folder in ("best", "final"):
        adapter = Path(folder) / "adapter_model.safetensors"
        assert same_tensors(tensors(killed / adapter), tensors(clean / adapter)), folder
    assert (killed / "adapter.gguf").read_bytes() == (clean / "adapter.gguf").read_bytes()


def test_the_real_worker_killed_twice_then_resumed_matches_the_clean_run(forked, cache, tmp_path):
    from assistant.drafting.models import embedded_model_path
    from trainer import jobs
    from trainer.base_model import identify
    from trainer.config import TrainConfig
    from trainer.data import from_rows
    from trainer.process import TrainingProcess

    root, _, _ = forked
    data = tmp_path / "data"
    data.mkdir()
    os.symlink(cache, data / "cache")
    cfg = TrainConfig.from_json(tiny_config(str(embedded_model_path())))
    run = jobs.new_run(data, cfg, from_rows(ROWS), identify(cfg.base), "killed")
    rng = random.Random(KILL_SEED)
    # Kill the whole process group at once when a seeded step is reported: first after the checkpoint of step
    # 2 (while step 4's may be being written), then in the resumed process, after step 4's.
    for target in (rng.randint(3, 4), rng.randint(5, 6)):
        proc = TrainingProcess(run, resume=(run / "checkpoints").exists())
        for event in proc.events():
            if event["event"] == "step" and event["step"] >= target:
                proc.kill()
                break
        assert proc.proc is not None and proc.proc.returncode == -9
        assert jobs.resumable_run(data) == run  # stopped by the app (status "stopped"): resumable
    resumed = TrainingProcess(run, resume=True)
    events = list(resumed.events())
    assert resumed.result()["status"] == "done", resumed.log_tail()
    assert any(e.get("phase") == "resume" for e in events)
    assert steps_logged(run) == steps_logged(root / "clean")
    adapter = Path("final") / "adapter_model.safetensors"
    assert same_tensors(tensors(run / adapter), tensors(root / "clean" / adapter))
