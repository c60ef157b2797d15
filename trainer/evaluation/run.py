"""Running an evaluation: draft every validation pair through the drafting core, score, report, record.

Each validation pair's instruction (and its ``input``, the email it answered, as the reply context) goes
through :func:`assistant.drafting.draft`, the same path as ``mailvoice draft``, with a fixed seed (llama.cpp
samples deterministically given one) and without saving the draft among the user's drafts. Each draft is
kept in ``eval_drafts`` under a key of everything it depends on (model file, adapter file, examples on or
off, seed, prompt files) as soon as it is made, so a stopped evaluation resumes, and the ablation rows share
nothing but the pairs.

No leakage: with style examples on, the model is never shown a validation email. Every message of a
validation thread, every message a validation pair was made from, and every sent message whose text is a
validation email's are excluded from retrieval (see :func:`held_out_ids`).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from pathlib import Path
from typing import Any

import sqlite_utils

from assistant.drafting.backend import Backend, Cancel
from assistant.drafting.drafts import DraftJob, DraftResult, draft_many
from assistant.drafting.models import resolve_adapter, resolve_model
from assistant.drafting.prompting import PromptError
from assistant.store.adapters import default_adapter
from trainer.evaluation import store
from trainer.evaluation.features import Embed
from trainer.evaluation.metrics import Scores, bleu, chrf, score
from trainer.evaluation.report import write_report
from trainer.evaluation.types import (
    EvalError,
    EvalProgress,
    EvalResult,
    EvalRow,
    Progress,
    RunConfig,
)
from trainer.pairs import Pair, counts, list_pairs, training_rows
from trainer.pairs.split import VALIDATION
from trainer.prompts import held_out_ids, reply_context, request_for

log = logging.getLogger("mailvoice.evaluation")

# --- what is evaluated -------------------------------------------------------------------------------------


def validation_pairs(db: sqlite_utils.Database, limit: int | None = None) -> list[Pair]:
    """The included validation pairs, oldest first (the first ``limit`` of them)."""
    if not db["pairs"].exists() or counts(db)["total"] == 0:
        raise EvalError("There are no training pairs yet: build them from your sent mail.",
                        cli="Run: mailvoice pairs build")  # fmt: skip
    pairs = list_pairs(db, split=VALIDATION, status="ok")
    if not pairs:
        raise EvalError(
            "The validation split is empty: it needs pairs from at least two conversations (build more pairs, or "
            "include excluded ones).",
            cli="(Run: mailvoice pairs build; excluded ones: mailvoice pairs list --split validation)",
        )
    if limit is not None:
        if limit < 1:
            raise EvalError("Evaluate at least one email.", cli="--limit must be at least 1.")
        pairs = pairs[:limit]
    return pairs


def run_config(db: sqlite_utils.Database, adapter: str | None, examples: bool, seed: int) -> RunConfig:
    """Resolve the model and ``adapter`` (a registered name; None or ``"none"``: the base model alone)."""
    model, _header = resolve_model(db)
    name, path = resolve_adapter(db, adapter if adapter else "none")
    return RunConfig(str(model), name, path, examples, seed)


# --- drafting -----------------------------------------------------------------------------------------------


class _Clock:
    """Overall progress and ETA across configurations; cached drafts count as done but not in the pace."""

    def __init__(self, total: int, progress: Progress | None):
        self.total, self.done, self.generated, self.generate_seconds = total, 0, 0, 0.0
        self.started = time.perf_counter()
        self.progress = progress
        self.pending = total  # drafts that may still need the model

    def tell(self, phase: str, label: str = "", done: int | None = None, total: int | None = None) -> None:
        if self.progress is None:
            return
        eta = None
        if phase == "draft" and self.generated:
            eta = self.generate_seconds / self.generated * self.pending
        self.progress(EvalProgress(phase, self.done if done is None else done, self.total if total is None else total,
                                   time.perf_counter() - self.started, label, eta))  # fmt: skip


def _draft_row(
    db: sqlite_utils.Database,
    config: RunConfig,
    pairs: list[Pair],
    held_out: tuple[int, ...],
    backend: Backend | None,
    clock: _Clock,
    cancel: Cancel | None,
    width: int | None = None,
) -> EvalRow:
    store.ensure(db)
    key = config.key()
    cached = store.cached_drafts(db, key)
    row = EvalRow(config, [])
    made: dict[int, tuple[str, list[int]]] = {}  # pair id -> (draft, examples shown)
    jobs: list[DraftJob] = []
    for pair in pairs:
        digest = store.pair_hash(pair.instruction, pair.input, pair.output)
        hit = cached.get(pair.id)
        if hit is not None and hit["pair_hash"] == digest:
            made[pair.id] = hit["text"], hit["examples"]
            row.cached += 1
            clock.done += 1
            clock.pending -= 1
            continue
        request = request_for(db, pair.message_id, pair.input, f"pair {pair.id}")
        options = {"reply_context": request.reply, "to": request.to, "length": request.length(db, held_out)}
        jobs.append(DraftJob(pair.instruction, options, (pair, digest)))
    if cached:
        clock.tell("draft", config.label)
    last = [time.perf_counter()]

    def done(job: DraftJob, result: DraftResult | PromptError) -> None:
        pair, digest = job.tag
        now = time.perf_counter()
        clock.done += 1
        clock.pending -= 1
        if isinstance(result, PromptError):
            row.skipped.append(f"pair {pair.id}: {result}")
        else:
            text, shown = result.drafts[0].text, result.examples
            store.save_draft(db, key, pair.id, digest, text, shown, result.seconds)
            made[pair.id] = text, shown
            row.generated += 1
            clock.generated += 1
            clock.generate_seconds += now - last[0]  # between finished drafts: the pace, several at once or not
        last[0] = now
        clock.tell("draft", config.label)

    if jobs:
        draft_many(db, jobs, done, backend=backend, width=width, cancel=cancel, adapter=config.adapter or "none",
                   examples=config.examples, exclude_examples=held_out, seed=config.seed, save=False)  # fmt: skip
    for pair in pairs:
        if pair.id in made:
            text, shown = made[pair.id]
            row.items.append({"pair_id": pair.id, "instruction": pair.instruction, "context": pair.input,
                              "real": pair.output, "draft": text, "examples": shown})  # fmt: skip
    return row


def _edit_scores(db: sqlite_utils.Database, config: RunConfig, backend: Backend | None, clock: _Clock,
                 cancel: Cancel | None, width: int | None = None) -> dict[str, Any] | None:  # fmt: skip
    """How close this configuration's drafts come to what the user kept, on the held-out corrections (the
    newest tenth of their edits of drafts, :func:`trainer.edits.split`): BLEU and chrF against the kept
    texts. None without held-out corrections."""
    from trainer.edits import split

    _learn, held = split(db) if db["corrections"].exists() else ([], [])
    if not held:
        return None
    jobs = []
    for c in held:
        reply = reply_context(c.context, f"correction {c.id}")
        jobs.append(DraftJob(c.instruction, {"reply_context": reply, "to": None if reply else c.recipient or None},
                             c.id))  # fmt: skip
    drafted: dict[int, str] = {}

    def done(job: DraftJob, result: DraftResult | PromptError) -> None:
        if not isinstance(result, PromptError):
            drafted[job.tag] = result.drafts[0].text
        clock.tell("edits", config.label, len(drafted), len(held))

    clock.tell("edits", config.label, 0, len(held))
    draft_many(db, jobs, done, backend=backend, width=width, cancel=cancel, adapter=config.adapter or "none",
               examples=config.examples, seed=config.seed, save=False)  # fmt: skip
    drafts = [drafted[c.id] for c in held if c.id in drafted]
    kept = [c.final_text for c in held if c.id in drafted]
    if not drafts:
        return None
    return {"n": len(drafts), "bleu": bleu(drafts, kept)["bleu"], "chrf": chrf(drafts, kept)}


def _score_row(row: EvalRow, training: list[str], embed: Embed | None, seed: int, clock: _Clock) -> Scores:
    def step(phase: str, done: int, total: int) -> None:
        clock.tell(phase, row.label, done, total)

    drafts = [it["draft"] for it in row.items]
    real = [it["real"] for it in row.items]
    scores = score(drafts, real, training, embed=embed, seed=seed, step=step)
    row.metrics = scores.metrics
    for item, extra in zip(row.items, scores.items, strict=True):
        item.update(extra)
    return scores


# --- the two entry points ---------------------------------------------------------------------------------


def evaluate(
    db: sqlite_utils.Database,
    root: Path,
    *,
    adapter: str | None,
    examples: bool,
    limit: int | None,
    seed: int = 0,
    backend: Backend | None = None,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
    embed: Embed | None = None,
    width: int | None = None,
) -> EvalResult:
    """Draft and score the validation split with one configuration; write and record its report.

    Args:
        adapter: a registered adapter's name, or None / ``"none"`` for the base model alone.
        examples: show the model the user's similar past emails (never validation ones).
        limit: score only the first N validation pairs.
        backend: the engine (tests pass a fake; the GUI its own); llama.cpp when None.
        progress: told :class:`EvalProgress` after each pair and during scoring.
        cancel: polled between and during drafts; :class:`Cancelled` is raised, finished drafts are kept.
        embed: texts -> features for MAUVE (tests pass a fake); the local MiniLM when None.
        width: drafts written at once (:func:`assistant.drafting.drafts.draft_many`); None: the ``draft_width``
            setting, else what suits the model. The drafts do not depend on it (up to floating-point ties).
    """
    pairs = validation_pairs(db, limit)
    config = run_config(db, adapter, examples, seed)
    return _run(db, Path(root), [config], pairs, [], seed, backend, progress, cancel, embed, "eval", width)


def run_ablations(
    db: sqlite_utils.Database,
    root: Path,
    *,
    adapter: str | None = None,
    limit: int | None = None,
    seed: int = 0,
    backend: Backend | None = None,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
    embed: Embed | None = None,
    width: int | None = None,
) -> EvalResult:
    """Base, base + examples, adapter, adapter + examples on the same pairs, in one report.

    ``adapter``: a registered name; None takes the one chosen with ``mailvoice use``, else the newest. With no
    adapter registered, the adapter rows are skipped and a notice says so.
    """
    pairs = validation_pairs(db, limit)
    notices: list[str] = []
    if adapter is not None and adapter.lower() == "none":
        adapter = None
        notices.append("Adapter rows skipped: --adapter none asks for the base model only.")
    else:
        adapter = adapter or default_adapter(db)
        if adapter is None:
            notices.append("No adapter is trained yet, so the adapter rows are skipped (train one: mailvoice train).")
    configs = [run_config(db, None, False, seed), run_config(db, None, True, seed)]
    if adapter is not None:
        configs += [run_config(db, adapter, False, seed), run_config(db, adapter, True, seed)]
    return _run(db, Path(root), configs, pairs, notices, seed, backend, progress, cancel, embed, "ablations", width)


def _run(db, root, configs, pairs, notices, seed, backend, progress, cancel, embed, kind, width=None) -> EvalResult:
    started = time.perf_counter()
    held_out = held_out_ids(db)
    training = [r["output"] for r in training_rows(db, "train")]
    clock = _Clock(len(pairs) * len(configs), progress)
    clock.tell("draft", configs[0].label)
    rows = [_draft_row(db, c, pairs, held_out, backend, clock, cancel, width) for c in configs]
    for row in rows:
        if not row.items:
            raise EvalError(f"No validation pair could be drafted with {row.label}: {'; '.join(row.skipped[:2])}")
        _score_row(row, training, embed, seed, clock)
        edits = _edit_scores(db, row.config, backend, clock, cancel, width)
        if edits is not None:
            row.metrics["edits"] = edits
        notices.extend(f"{row.label}: {w}" if len(rows) > 1 else w for w in row.metrics.get("warnings", []))
        notices.extend(f"Skipped {s}" for s in row.skipped)
    clock.tell("report")
    adapter = next((c.adapter for c in configs if c.adapter), None)
    folder = report_folder(root, adapter)
    seconds = time.perf_counter() - started
    summary = {
        "kind": kind,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "n": len(pairs),
        "seed": seed,
        "held_out_messages": len(held_out),
        "training_emails": len(training),
        "seconds": round(seconds, 3),
        "notices": _unique(notices),
    }
    json_path, html_path = write_report(folder, rows, summary)
    metrics = rows[0].metrics if kind == "eval" else {r.label: r.metrics for r in rows}
    eval_id = store.record(db, kind=kind, adapter=adapter, n=len(pairs), seed=seed,
                           config=[{**c.to_json(), "limit": len(pairs)} for c in configs],
                           metrics={r.label: r.metrics for r in rows}, report_dir=folder, root=root,
                           seconds=seconds)  # fmt: skip
    log.info("evaluation %d: %s", eval_id, folder)
    return EvalResult(kind, rows, metrics, json_path, html_path, eval_id, seconds, summary["notices"])


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def report_folder(root: Path, adapter: str | None) -> Path:
    """``<data>/adapters/<name>/eval/<UTC time>/`` for an adapter, ``<data>/eval/<UTC time>/`` for the base."""
    base = (root / "adapters" / adapter / "eval") if adapter else (root / "eval")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder, n = base / stamp, 2
    while True:
        try:
            folder.mkdir(mode=0o700)
            return folder
        except FileExistsError:  # two evaluations in one second
            folder, n = base / f"{stamp}-{n}", n + 1
