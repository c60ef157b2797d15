"""Run folders: creating a run, finding the one to resume, and registering what a finished run exported.

``<data>/runs/<id>/`` holds ``config.json`` (the resolved TrainConfig), ``job.json`` (what the worker does),
``data.jsonl`` (the examples, frozen: a resumed run trains on exactly the same data), ``status.json``,
``metrics.jsonl``, ``checkpoints/``, ``best/`` and ``final/`` (PEFT adapters) and ``worker.log``. The
exported adapter goes to ``<data>/adapters/<name>/`` (``adapter.gguf`` + ``adapter_config.json``).

Starting a run is the same for the CLI and the GUI: :func:`resolve_config`, :func:`training_examples`,
:func:`run_preflight`, then :func:`prepare_run` (refuse, or take the settings that fit, and create the folder);
:class:`trainer.process.TrainingProcess` trains it and :func:`finish` registers the result.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlite_utils

from assistant.store import adapters
from assistant.store.db import get_setting
from trainer import preflight, prompts
from trainer.base_model import BaseIdentity, identify
from trainer.config import TrainConfig
from trainer.data import DataError, Example, load_examples, save_jsonl
from trainer.events import Event, Finished, parse
from trainer.metrics import MetricsLog

log = logging.getLogger("mailvoice.trainer")

RESUMABLE = ("created", "running", "cancelled", "stopped", "crashed", "failed")
# cancelled: stopped after a step, with a checkpoint; stopped: stopped at once by the person (the app killed the
# process); crashed: the process died on its own (out of memory, a native crash); failed: it reported an error.
LIVE = ("created", "running")  # what the parent may still overwrite once the process is gone
TRAINING_LOG = "training_log.jsonl"  # the run's metrics.jsonl, kept beside the adapter it made
SETTINGS_KEY = "train"  # a JSON object of TrainConfig fields: defaults < this setting < options


def runs_root(root: Path) -> Path:
    return root / "runs"


def cache_root(root: Path) -> Path:
    return root / "cache"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def write_status(run_dir: Path, status: str, **extra: Any) -> None:
    """``status.json``, replaced atomically: the GUI may read it while the worker writes it."""
    tmp = run_dir / "status.json.tmp"
    tmp.write_text(json.dumps({"status": status, "updated_at": _now(), **extra}, default=str))
    tmp.replace(run_dir / "status.json")


def read_status(run_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((run_dir / "status.json").read_text())
    except (OSError, ValueError):
        return {"status": "unknown"}


def status_result(status: dict[str, Any]) -> Finished | None:
    """The result a run that finished (done or cancelled) keeps in its status (:func:`read_status`): the
    :class:`trainer.events.Finished` event's fields under ``result``; None for a run without one. Also reads the
    nested form earlier versions wrote (``{"result": {"status": ..., "result": {"steps": ...}, "export": ...}}``).
    """
    result = status.get("result")
    if not isinstance(result, dict):
        return None
    finished = parse({**result, "event": Finished.event})
    return finished if isinstance(finished, Finished) else None


def mark_ended(run_dir: Path, status: str, **extra: Any) -> bool:
    """Record how a run whose process is gone ended (``stopped`` or ``crashed``), unless the process recorded
    it itself (a run that finished or failed keeps that); True when written."""
    if read_status(run_dir)["status"] not in LIVE:
        return False
    write_status(run_dir, status, **extra)
    return True


def checkpoint_step(run_dir: Path) -> int | None:
    """The step a resume continues from (the newest checkpoint), or None when there is none yet."""
    from trainer.checkpoint import latest

    folder = latest(run_dir / "checkpoints")
    return int(folder.name.split("-")[1]) if folder is not None else None


def resolve_config(
    db: sqlite_utils.Database, hardware: preflight.Hardware | None = None, **options: Any
) -> TrainConfig:
    """Defaults < this machine's recipe < the ``train`` setting < ``options`` (None: not given); the base
    defaults to the drafting model.

    The recipe (:func:`trainer.preflight.machine_recipe`) fills only what the person has set neither in the
    setting nor as an option; what it chose and why is kept in ``extra["recipe"]`` (saved with the run).
    """
    from assistant.drafting.models import current_model

    saved = get_setting(db, SETTINGS_KEY, {}) or {}
    cfg = TrainConfig.from_json(saved).replace(**options)
    given = set(saved) | {k for k, v in options.items() if v is not None}
    recipe = preflight.machine_recipe(hardware or preflight.detect())
    chosen = {k: v for k, v in recipe.settings.items() if k not in given}
    if chosen:
        note = {"name": recipe.name, "why": recipe.why, "settings": chosen}
        cfg = cfg.replace(**chosen, extra={**cfg.extra, "recipe": note})
    if not cfg.base:
        cfg = cfg.replace(base=str(current_model(db)[0]))
    return cfg.replace(base=str(Path(cfg.base).expanduser().resolve()))


def recipe_text(cfg: TrainConfig) -> str:
    """One line saying which settings the machine's recipe chose and why ("" when it chose none)."""
    note = cfg.extra.get("recipe")
    if not note:
        return ""
    s = note["settings"]
    parts = []
    if "max_seq_len" in s:
        parts.append(f"{s['max_seq_len']} tokens")
    if "batch_size" in s or "grad_accum" in s:
        parts.append(f"batch {cfg.batch_size} x {cfg.grad_accum}")
    if "eval_every" in s:
        parts.append(f"an evaluation every {s['eval_every']} steps")
    if "checkpoint_every" in s:
        parts.append(f"a checkpoint every {s['checkpoint_every']} steps")
    return (
        f"The {note['name'].upper()} recipe ({', '.join(parts) or 'its settings'}): {note['why']}. "
        "Settings you choose win over it."
    )


def training_examples(db: sqlite_utils.Database, data_file: str | None = None) -> list[Example]:
    """The examples a run trains on (the pairs table, or a JSONL file); :class:`DataError` without any."""
    examples = load_examples(data_file or db)
    if not any(e.split == "train" for e in examples):
        where = data_file or "the pairs table"
        raise DataError(
            f"No training examples in {where}: build pairs from your sent mail, or train on a JSONL file of them.",
            cli="Build them with: mailvoice pairs build, or give a JSONL file with: --data FILE",
        )
    return examples


PROMPT_TOKENS = 250  # the drafting prompt's fixed text (system, habits, request) in an example, roughly
EXAMPLE_TOKENS = 300  # what the retrieved emails add to an example shown with them, roughly (up to max_seq_len)


def estimate_tokens(examples: list[Example], cfg: TrainConfig | None = None) -> int:
    """Tokens of the train split before the tokenizer is loaded: ~4 characters each, plus the prompt around
    them (the drafting prompt, with retrieved emails for a share of the examples), at most max_seq_len each."""
    total = 0
    for e in examples:
        if e.split != "train":
            continue
        written = getattr(e, "messages", None)  # the app's pair list passes pairs, which have none
        if written:
            own = sum(len(m["content"]) for m in written) // 4 + len(e.output) // 4 + 20
        else:
            own = (len(e.instruction) + len(e.input) + len(e.output)) // 4 + PROMPT_TOKENS
            own += int(EXAMPLE_TOKENS * cfg.examples_probability) if cfg else 0
        total += min(own, cfg.max_seq_len) if cfg else own
    return total


def run_preflight(
    root: Path, cfg: TrainConfig, examples: list[Example] | None, hardware: preflight.Hardware | None = None
) -> preflight.Preflight:
    """What this machine can do with ``cfg`` on ``examples`` (the rate of an earlier run here when there is one)."""
    from trainer.shapes import shape_of

    identity = identify(cfg.base)  # a missing base fails here, with its own message
    pf = preflight.preflight(
        shape_of(cfg.base),
        cfg,
        hardware or preflight.detect(),
        estimate_tokens(examples or [], cfg),
        measured_rate(root, identity.sha256),
    )
    if recipe_text(cfg):
        pf.advice.insert(0, recipe_text(cfg))  # the CLI and the app both show preflight's advice
    return pf


def default_adapter_name() -> str:
    return f"style-{dt.datetime.now().strftime('%Y%m%d-%H%M')}"


def prepare_run(
    db: sqlite_utils.Database,
    root: Path,
    cfg: TrainConfig,
    examples: list[Example],
    pf: preflight.Preflight,
    name: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Refuse what preflight refused; else write each example's prompt (the drafting prompt, see
    :mod:`trainer.prompts`; ``progress`` hears ``(done, total)``) and create the run folder (with the settings
    that fit); return it."""
    preflight.check(pf)
    if not pf.fits:  # the asked settings do not fit, smaller ones do: use those (preflight's advice says so)
        cfg = cfg.replace(**pf.recommended)
    adapter = adapters.unique_name(db, name or default_adapter_name())
    texts = prompts.draft_texts()
    examples = prompts.write_prompts(
        db,
        examples,
        count_tokens=prompts.token_counter(cfg.base),
        max_seq_len=cfg.max_seq_len,
        examples_probability=cfg.examples_probability,
        seed=cfg.seed,
        texts=texts,
        progress=progress,
    )
    return new_run(root, cfg, examples, identify(cfg.base), adapter, texts=texts)


def new_run(
    root: Path,
    cfg: TrainConfig,
    examples: list[Example],
    base: BaseIdentity,
    adapter_name: str,
    texts: prompts.PromptTexts | None = None,
) -> Path:
    """Create the run folder with everything the worker needs; return it."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir, n = runs_root(root) / stamp, 2
    while run_dir.exists():
        run_dir, n = runs_root(root) / f"{stamp}-{n}", n + 1
    run_dir.mkdir(parents=True)
    cfg.save(run_dir / "config.json")
    save_jsonl(examples, run_dir / "data.jsonl")
    if texts is not None and any(e.messages for e in examples):
        prompts.save_texts(run_dir, texts)
    job = {
        "config": cfg.to_json(),
        "base": base.to_json(),
        "architecture": _architecture(base),
        "cache_root": str(cache_root(root)),
        "adapter_name": adapter_name,
        "adapter_dir": str(root / "adapters" / adapter_name),
        "created_at": _now(),
    }
    (run_dir / "job.json").write_text(json.dumps(job, indent=2))
    write_status(run_dir, "created")
    return run_dir


def _architecture(base: BaseIdentity) -> str | None:
    """The base GGUF's architecture name: the adapter must carry the same one for llama.cpp to load it."""
    if base.kind != "gguf":
        return None
    from assistant.gguf import read_gguf_header

    return str(read_gguf_header(base.path).metadata.get("general.architecture") or "") or None


def _alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except (OSError, TypeError, ValueError):
        return False
    return True


def resumable_run(root: Path) -> Path | None:
    """The newest run that stopped before finishing (cancelled, crashed, failed), if any."""
    runs = sorted(runs_root(root).glob("*/job.json"), key=lambda p: p.parent.name, reverse=True)
    for job in runs:
        status = read_status(job.parent)
        if status["status"] == "running" and _alive(status.get("pid")):
            continue  # still training (another window, or the GUI)
        if status["status"] in RESUMABLE:
            return job.parent
    return None


def job_of(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "job.json").read_text())


def finish(
    db: sqlite_utils.Database, root: Path, run_dir: Path, finished: Event | dict[str, Any]
) -> dict[str, Any] | None:
    """Register the adapter a finished run exported (``finished``: its last event, or that event's dict); None
    when the run did not finish (cancelled, stopped, failed) or exported nothing."""
    if isinstance(finished, dict):
        finished = parse(finished)
    if not isinstance(finished, Finished) or finished.status != "done" or finished.export is None:
        return None
    job = job_of(run_dir)
    metrics: dict[str, Any] = {
        key: getattr(finished, key)
        for key in ("steps", "train_loss", "eval_loss", "best_step", "seconds", "tokens_per_second")
    }
    metrics["parity"] = finished.parity.fields_json() if finished.parity else None
    gguf = Path(finished.export.path)
    _keep_training_log(run_dir, gguf.parent)
    return adapters.register(db, root, job["adapter_name"], gguf, job["base"], job["config"], metrics, run_dir)


def _keep_training_log(run_dir: Path, adapter_dir: Path) -> None:
    """Copy the run's losses beside its adapter: the curve outlives the run folder (which holds gigabytes of
    checkpoints and may be deleted)."""
    try:
        shutil.copyfile(run_dir / "metrics.jsonl", adapter_dir / TRAINING_LOG)
    except FileNotFoundError:
        pass  # a run that logged nothing (the stand-in trainer): the adapter has no curve to show
    except OSError as exc:
        log.warning("could not keep the training log of %s beside its adapter: %s", run_dir, exc)


def training_log(root: Path, adapter: dict[str, Any]) -> list[Event]:
    """The events an adapter's run logged (``start``, ``step``, ``eval``...), as
    :func:`assistant.store.adapters.list_adapters` describes the adapter; [] when neither its copy nor its run
    folder has them."""
    places = [Path(adapter["path"]).parent] + ([Path(adapter["run_dir"])] if adapter.get("run_dir") else [])
    for folder in places:
        folder = folder if folder.is_absolute() else root / folder
        for name in (TRAINING_LOG, "metrics.jsonl"):
            try:
                return MetricsLog(folder / name).read()
            except (OSError, ValueError):
                continue
    return []


def measured_rate(root: Path, base_sha256: str) -> float | None:
    """Training tokens/s of the newest finished run on the same base on this machine (for preflight)."""
    for job_file in sorted(runs_root(root).glob("*/job.json"), key=lambda p: p.parent.name, reverse=True)[:10]:
        try:
            job = json.loads(job_file.read_text())
        except (OSError, ValueError):
            continue
        result = status_result(read_status(job_file.parent))
        rate = result.tokens_per_second if result else None
        if job.get("base", {}).get("sha256") == base_sha256 and rate:
            return float(rate)
    return None
