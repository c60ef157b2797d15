"""Run folders: creating a run, finding the one to resume, and registering what a finished run exported.

``<data>/runs/<id>/`` holds ``config.json`` (the resolved TrainConfig), ``job.json`` (what the worker does),
``data.jsonl`` (the examples, frozen: a resumed run trains on exactly the same data), ``status.json``,
``metrics.jsonl``, ``checkpoints/``, ``best/`` and ``final/`` (PEFT adapters) and ``worker.log``. The
exported adapter goes to ``<data>/adapters/<name>/`` (``adapter.gguf`` + ``adapter_config.json``).

Starting a run is the same for the CLI and the GUI: :func:`resolve_config`, :func:`training_examples`,
:func:`run_preflight`, then :func:`prepare_run` (refuse, or take the settings that fit, and create the folder);
:class:`trainer.process.TrainingProcess` trains it and :func:`finish` registers the result.

A preference-tuning run (``job.json`` ``kind: "preference"``, see :mod:`trainer.preference`) starts from an
adapter instead of the base alone: :func:`preference_plan` and :func:`preference_preflight` say what it would
train and how long it takes, :func:`prepare_preference_run` creates it (its folder holds ``pairs.jsonl`` and the
starting adapter's weights in ``start/`` instead of ``data.jsonl``); training and registering are the same.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from assistant.errors import MailvoiceError
from assistant.store import adapters
from assistant.store.db import get_setting
from trainer import preflight, prompts
from trainer.base_model import BaseIdentity, identify
from trainer.config import ALL_PROJECTIONS, ConfigError, TrainConfig
from trainer.data import DataError, Example, load_examples, save_jsonl
from trainer.edits import PreferencePair, preference_pairs, split
from trainer.events import Event, Finished, parse
from trainer.metrics import MetricsLog
from trainer.preference import PAIRS_FILE, START_DIR, PreferenceError, PreferenceExample, save_pairs

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
    if s.get("gradient_checkpointing") is False:
        parts.append("without gradient checkpointing: faster, as memory allows")
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


PROMPT_TOKENS = 130  # the drafting prompt's fixed text (system, habits, request, chat markup), roughly
SHOWN_EMAILS = 3  # retrieved emails an example shown with them holds at most (as many as fit max_seq_len)
SHOWN_EMAIL_TOKENS = 25  # what a shown email adds beside its own words (its request turn), roughly


def estimate_tokens(examples: list[Example], cfg: TrainConfig | None = None) -> int:
    """Tokens of the train split before the tokenizer is loaded: ~4 characters each, at most max_seq_len an
    example. Prompts already written (a run's ``data.jsonl``) count as they are. Otherwise the drafting prompt's
    fixed text is added, and for the share of examples shown with retrieved emails, up to three of the user's
    emails of the median length, as many as fit."""
    train = [e for e in examples if e.split == "train"]
    lengths = sorted(len(e.output) // 4 for e in train)
    shown_email = (lengths[len(lengths) // 2] if lengths else 0) + SHOWN_EMAIL_TOKENS
    total = 0.0
    for e in train:
        written = getattr(e, "messages", None)  # the app's pair list passes pairs, which have none
        if written:
            own = sum(len(m["content"]) for m in written) // 4 + len(e.output) // 4 + 20
        else:
            own = (len(e.instruction) + len(e.input) + len(e.output)) // 4 + PROMPT_TOKENS
            if cfg:  # shown with retrieved emails for a share of the examples, as many as fit
                room = max(0, cfg.max_seq_len - own)
                own += cfg.examples_probability * min(SHOWN_EMAILS * shown_email, room)
        total += min(own, cfg.max_seq_len) if cfg else own
    return int(total)


def written_tokens(run_dir: Path) -> tuple[int, int]:
    """Tokens per epoch of a created run's train split, counted from its prompts as written, and its examples."""
    examples = load_examples(run_dir / "data.jsonl")
    train = sum(e.split == "train" for e in examples)
    return estimate_tokens(examples, TrainConfig.load(run_dir / "config.json")), train


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
        measured_rate(root, identity.sha256, cfg.gradient_checkpointing),
        examples=sum(e.split == "train" for e in examples or []),
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
    examples = _write_prompts(db, examples, cfg, texts, progress)
    return new_run(root, cfg, examples, identify(cfg.base), adapter, texts=texts)


def _write_prompts(
    db: sqlite_utils.Database,
    examples: list[Example],
    cfg: TrainConfig,
    texts: prompts.PromptTexts,
    progress: Callable[[int, int], None] | None,
) -> list[Example]:
    """``examples`` written with the drafting prompt as a run with ``cfg`` trains them (:mod:`trainer.prompts`)."""
    return prompts.write_prompts(
        db,
        examples,
        count_tokens=prompts.token_counter(cfg.base),
        max_seq_len=cfg.max_seq_len,
        examples_probability=cfg.examples_probability,
        seed=cfg.seed,
        texts=texts,
        progress=progress,
    )


def new_run(
    root: Path,
    cfg: TrainConfig,
    examples: list[Example],
    base: BaseIdentity,
    adapter_name: str,
    texts: prompts.PromptTexts | None = None,
) -> Path:
    """Create the run folder with everything the worker needs; return it."""
    run_dir = _new_run_dir(root, cfg)
    save_jsonl(examples, run_dir / "data.jsonl")
    if texts is not None and any(e.messages for e in examples):
        prompts.save_texts(run_dir, texts)
    _write_job(run_dir, root, cfg, base, adapter_name)
    return run_dir


def _new_run_dir(root: Path, cfg: TrainConfig) -> Path:
    """A new, uniquely named run folder holding ``config.json``."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir, n = runs_root(root) / stamp, 2
    while run_dir.exists():
        run_dir, n = runs_root(root) / f"{stamp}-{n}", n + 1
    run_dir.mkdir(parents=True)
    cfg.save(run_dir / "config.json")
    return run_dir


def _write_job(run_dir: Path, root: Path, cfg: TrainConfig, base: BaseIdentity, adapter_name: str,
               **more: Any) -> None:  # fmt: skip
    """``job.json`` (what the worker does; ``more``: a run kind's own keys) and the status ``created``."""
    job = {
        "config": cfg.to_json(),
        "base": base.to_json(),
        "architecture": _architecture(base),
        "cache_root": str(cache_root(root)),
        "adapter_name": adapter_name,
        "adapter_dir": str(root / "adapters" / adapter_name),
        "created_at": _now(),
        **more,
    }
    (run_dir / "job.json").write_text(json.dumps(job, indent=2))
    write_status(run_dir, "created")


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
    if finished.preference is not None:
        metrics["preference"] = finished.preference
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


def measured_rate(root: Path, base_sha256: str, gradient_checkpointing: bool = True) -> float | None:
    """Training tokens/s of the newest finished run on the same base on this machine that trained with the same
    ``gradient_checkpointing`` (a run without it is faster), for preflight."""
    for job_file in sorted(runs_root(root).glob("*/job.json"), key=lambda p: p.parent.name, reverse=True)[:10]:
        try:
            job = json.loads(job_file.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(job, dict) or job.get("base", {}).get("sha256") != base_sha256:
            continue
        result = status_result(read_status(job_file.parent))
        rate = result.tokens_per_second if result else None
        if rate and trains_with_checkpointing(job_file.parent) == gradient_checkpointing:
            return float(rate)
    return None


def trains_with_checkpointing(run_dir: Path) -> bool:
    """Whether the run in ``run_dir`` trains (or trained) with gradient checkpointing (the default where its
    settings are unreadable)."""
    try:
        return TrainConfig.load(run_dir / "config.json").gradient_checkpointing
    except (ConfigError, TypeError):
        return TrainConfig().gradient_checkpointing


# --- preference tuning ------------------------------------------------------------------------------------

MIN_PREFERENCE_PAIRS = 8
"""Corrections whose words the user changed, needed to learn from: with fewer, DPO's steps mostly learn the few
texts themselves (a handful of pairs is memorised in one pass), not what the user prefers."""
MIN_HELD_OUT_PAIRS = 1
"""Changed corrections among the held-out newest tenth: without one, there is nothing to measure the result on."""
REFRESH_SUFFIX = re.compile(r"-refresh-\d{8}-\d{4}(-\d+)?$")


@dataclass
class PreferencePlan:
    """What a preference-tuning run would train: its settings, the adapter it starts from, the pairs."""

    cfg: TrainConfig  # the starting adapter's base and LoRA shape, the preference rate, passes and steps
    adapter: dict[str, Any]  # the starting adapter, as assistant.store.adapters.list_adapters shows it
    peft_dir: Path  # its PEFT weights (adapter_config.json + adapter_model.safetensors)
    train: list[PreferencePair]
    held_out: list[PreferencePair]
    rule_made: bool

    def counts(self) -> dict[str, int]:
        return pair_counts(self.train, self.held_out)


def pair_counts(train: list[Any], held_out: list[Any]) -> dict[str, int]:
    """``train`` and ``held_out`` pairs; of the training ones, ``edit`` (the model's own drafts rejected) and
    ``rule_made``."""
    edits = sum(p.made_by == "edit" for p in train)
    return {"train": len(train), "held_out": len(held_out), "edit": edits, "rule_made": len(train) - edits}


def refresh_name(old: str) -> str:
    """``<old>-refresh-YYYYMMDD-HHMM`` (an earlier refresh's suffix replaced, not stacked)."""
    return f"{REFRESH_SUFFIX.sub('', old)}-refresh-{dt.datetime.now():%Y%m%d-%H%M}"


def peft_folder(root: Path, adapter: dict[str, Any]) -> Path:
    """The PEFT weights an adapter was exported from (its run's ``best/`` or ``final/``); :class:`PreferenceError`
    when they are gone."""
    places = []
    gguf = Path(adapter["path"]) if Path(adapter["path"]).is_absolute() else root / adapter["path"]
    try:
        saved = json.loads((gguf.parent / "adapter_config.json").read_text(encoding="utf-8"))
        if saved.get("peft_adapter"):
            places.append(Path(saved["peft_adapter"]))
    except (OSError, ValueError):
        pass
    if adapter.get("run_dir"):
        run_dir = Path(adapter["run_dir"]) if Path(adapter["run_dir"]).is_absolute() else root / adapter["run_dir"]
        places += [run_dir / "best", run_dir / "final"]
    for folder in places:
        if (folder / "adapter_model.safetensors").is_file() and (folder / "adapter_config.json").is_file():
            return folder
    raise PreferenceError(
        f"The training weights of the adapter {adapter['name']} are gone (they were in its run folder, "
        f"{places[-1].parent if places else 'unknown'}), and preference tuning starts from them. Train a new "
        "adapter, then tune it on your corrections.",
        cli="Train one with: mailvoice train",
    )


def _starting_adapter(db: sqlite_utils.Database, name: str | None) -> dict[str, Any]:
    name = name or adapters.default_adapter(db)
    if not name:
        raise PreferenceError(
            "Preference tuning improves an adapter you have, and there is none yet: train an adapter first.",
            cli="Train one with: mailvoice train",
        )
    found = next((a for a in adapters.list_adapters(db) if a["name"] == name), None)
    if found is None:
        adapters.stored_path(db, name)  # raises AdapterError, naming the adapters there are
        raise PreferenceError(f"No adapter named {name!r}.")
    return found


def _preference_pairs(db: sqlite_utils.Database, rule_made: bool) -> tuple[list[PreferencePair], list[PreferencePair]]:
    """(pairs to learn from, held-out pairs): the held-out ones are the user's own edits only."""
    if not db["corrections"].exists():
        return [], []
    learn, held = split(db)
    return preference_pairs(learn, rule_made=rule_made), preference_pairs(held)


def _too_few(db: sqlite_utils.Database, edits: int, held: int, rule_made: bool) -> PreferenceError:
    from assistant.drafting.corrections import counts

    c = counts(db) if db["corrections"].exists() else {"total": 0, "excluded": 0}
    rules = " Rule-made texts are added to these, not counted." if rule_made else ""
    return PreferenceError(
        f"Preference tuning needs at least {MIN_PREFERENCE_PAIRS} corrections whose words you changed to learn "
        f"from, and {MIN_HELD_OUT_PAIRS} more among the newest tenth of your corrections, held out to measure the "
        f"result; you have {edits} to learn from and {held} held out ({c['total']} corrections in all, "
        f"{c['excluded']} excluded). With fewer it would learn those few texts, not what you prefer.{rules} Edit "
        "more drafts before you save, copy or open them, then try again.",
        cli="See them with: mailvoice corrections",
    )


def preference_plan(
    db: sqlite_utils.Database, root: Path, cfg: TrainConfig, adapter: str | None = None, rule_made: bool = False
) -> PreferencePlan:
    """What :func:`prepare_preference_run` would train (``cfg``: :func:`resolve_config`'s; ``adapter``: the one
    to start from, by default the one drafting uses, else the newest); :class:`PreferenceError` when there is no
    adapter, its weights or base are gone, or there are too few corrections."""
    from trainer.shapes import shape_of

    row = _starting_adapter(db, adapter)
    peft_dir = peft_folder(root, row)
    base = row["base"]
    try:
        same = identify(base["path"]).sha256 == base["sha256"]
    except MailvoiceError:
        same = False
    if not same:
        raise PreferenceError(
            f"The adapter {row['name']} was trained on {base['path']}, which is gone or has changed; preference "
            "tuning needs that exact model. Put it back, or train a new adapter on the model you have."
        )
    train, held = _preference_pairs(db, rule_made)
    edits = sum(p.made_by == "edit" for p in train)
    if edits < MIN_PREFERENCE_PAIRS or len(held) < MIN_HELD_OUT_PAIRS:
        raise _too_few(db, edits, len(held), rule_made)
    peft = json.loads((peft_dir / "adapter_config.json").read_text(encoding="utf-8"))
    targets = set(peft["target_modules"])
    settings = {
        **cfg.to_json(),
        "base": base["path"],
        # The LoRA's shape is the starting adapter's; no dropout, so that the policy at step 0 is exactly the
        # reference it is measured against (as trl does).
        "lora_r": int(peft["r"]),
        "lora_alpha": float(peft["lora_alpha"]),
        "lora_dropout": 0.0,
        "target_modules": [m for m in ALL_PROJECTIONS if m in targets] + sorted(targets - set(ALL_PROJECTIONS)),
        "learning_rate": cfg.preference_rate(shape_of(base["path"]).parameters),
        "epochs": cfg.preference_epochs,
        "max_steps": cfg.preference_max_steps,
    }
    plan = PreferencePlan(TrainConfig.from_json(settings), row, peft_dir, train, held, rule_made)
    note = {"from_adapter": row["name"], "rule_made": rule_made, "pairs": plan.counts()}
    plan.cfg = plan.cfg.replace(extra={**plan.cfg.extra, "preference": note})
    return plan


def preference_preflight(
    root: Path, plan: PreferencePlan, hardware: preflight.Hardware | None = None
) -> preflight.Preflight:
    """:func:`run_preflight` for a preference run. Each pair is two sequences (the chosen and the rejected text
    after the same prompt), so memory is that of twice the batch, and the tokens are both texts of every pair;
    scoring every pair once with the starting adapter (a forward pass, a third of a training step's work) is
    added to them. The recommended batch is in pairs, as the run counts it."""
    cfg = plan.cfg
    sequences = [Example(p.instruction, p.context, text) for p in plan.train for text in (p.chosen, p.rejected)]
    scored = [Example(p.instruction, p.context, text) for p in plan.held_out for text in (p.chosen, p.rejected)]
    tokens = estimate_tokens(sequences, cfg)
    reference = (tokens + estimate_tokens(scored, cfg)) // 3  # every pair scored once, whatever the steps
    from trainer.shapes import shape_of

    pf = preflight.preflight(
        shape_of(cfg.base),
        cfg.replace(batch_size=2 * cfg.batch_size),
        hardware or preflight.detect(),
        tokens,
        measured_rate(root, identify(cfg.base).sha256, cfg.gradient_checkpointing),
        examples=len(sequences),
        once_tokens=reference,
    )
    if pf.recommended:
        pf.recommended["batch_size"] = max(1, pf.recommended["batch_size"] // 2)
    if recipe_text(cfg):
        pf.advice.insert(0, recipe_text(cfg))
    return pf


def prepare_preference_run(
    db: sqlite_utils.Database,
    root: Path,
    cfg: TrainConfig,
    adapter: str | None = None,
    rule_made: bool = False,
    name: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    *,
    pf: preflight.Preflight | None = None,
) -> Path:
    """Create a preference-tuning run of ``adapter`` (default: the one drafting uses, else the newest) on the
    user's corrections; return its folder (train it with :class:`trainer.process.TrainingProcess`, register it
    with :func:`finish`).

    Args:
        cfg: :func:`resolve_config`'s settings; the ``preference_*`` ones choose beta, rate, passes and steps.
        rule_made: also reject rule-made bad texts for drafts used as written (:func:`trainer.edits.rule_rejected`).
        name: the new adapter's name (default ``<adapter>-refresh-YYYYMMDD-HHMM``).
        progress: hears ``(done, total)`` while the prompts are written.
        pf: :func:`preference_preflight` when already computed (the CLI shows it first).

    Raises:
        PreferenceError: no adapter, its weights or base gone, or too few corrections (the message says how many
            there are and are needed).
        trainer.preflight.PreflightError: the run does not fit this machine.
    """
    plan = preference_plan(db, root, cfg, adapter, rule_made)
    pf = pf or preference_preflight(root, plan)
    preflight.check(pf)
    cfg = plan.cfg if pf.fits else plan.cfg.replace(**pf.recommended)
    new_name = adapters.unique_name(db, name or refresh_name(plan.adapter["name"]))
    texts = prompts.draft_texts()
    pairs = _write_pair_prompts(db, plan, cfg, texts, progress)
    return new_preference_run(root, cfg, pairs, identify(cfg.base), new_name, from_adapter=plan.adapter["name"],
                              peft_dir=plan.peft_dir, rule_made=rule_made, texts=texts)  # fmt: skip


def _write_pair_prompts(
    db: sqlite_utils.Database,
    plan: PreferencePlan,
    cfg: TrainConfig,
    texts: prompts.PromptTexts,
    progress: Callable[[int, int], None] | None,
) -> list[PreferenceExample]:
    """Each pair with its prompt, written by the drafting prompt as a supervised example of the correction is
    (:func:`trainer.prompts.write_prompts`), once per correction; every text scrubbed as the pairs are."""
    from trainer.pairs.scrub import load_settings, scrub

    settings = load_settings(db)

    def clean(text: str) -> str:
        return scrub(text, settings).text

    pairs = [
        PreferenceExample(clean(p.instruction), clean(p.context), clean(p.chosen), clean(p.rejected), split,
                          p.made_by, p.correction_id, p.recipient)
        for split, found in (("train", plan.train), ("validation", plan.held_out))
        for p in found
    ]  # fmt: skip
    firsts = list({p.correction_id: p for p in reversed(pairs)}.values())[::-1]  # one example per correction
    examples = [p.example() for p in firsts]
    written = _write_prompts(db, examples, cfg, texts, progress)
    messages = {p.correction_id: w.messages for p, w in zip(firsts, written, strict=True)}
    return [dataclasses.replace(p, messages=messages[p.correction_id]) for p in pairs]


def new_preference_run(
    root: Path,
    cfg: TrainConfig,
    pairs: list[PreferenceExample],
    base: BaseIdentity,
    adapter_name: str,
    *,
    from_adapter: str,
    peft_dir: Path | None,
    rule_made: bool = False,
    texts: prompts.PromptTexts | None = None,
) -> Path:
    """Create a preference run's folder: the pairs (``pairs.jsonl``), the starting adapter's weights copied
    into ``start/`` (the run needs nothing outside its folder; ``peft_dir`` None: none, for a stand-in run), and
    ``job.json`` with ``kind: "preference"``; return it."""
    run_dir = _new_run_dir(root, cfg)
    save_pairs(pairs, run_dir / PAIRS_FILE)
    if peft_dir is not None:
        (run_dir / START_DIR).mkdir()
        for file in ("adapter_config.json", "adapter_model.safetensors"):
            shutil.copyfile(peft_dir / file, run_dir / START_DIR / file)
    if texts is not None:
        prompts.save_texts(run_dir, texts)
    counts = pair_counts([p for p in pairs if p.split == "train"], [p for p in pairs if p.split != "train"])
    note = {"from_adapter": from_adapter, "rule_made": rule_made, "pairs": counts}
    _write_job(run_dir, root, cfg, base, adapter_name, kind="preference", preference=note)
    return run_dir
