"""Building pairs: pick sent emails, write each one's instruction with a model, store pair by pair.

:func:`build_pairs` is what the CLI and the GUI call. Work is planned before the model runs: candidates
and their reply contexts are read in a few batched queries, and cached instructions (same content, prompt
version and model) are reused, so only new emails reach the model. Each finished pair is committed at once,
so a killed build resumes where it stopped. Progress goes to a plain callback with an ETA; an estimate of
the whole run comes first (from the speed stored by the last build with this model, else measured on the
first few emails). With a parallel engine (``width`` above 1) several emails are labelled at once on one
llama.cpp context, each through the same tries as alone, and each pair is still committed as it is finished.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import sqlite_utils

from assistant.drafting.backend import Backend, EngineSettings, LlamaBackend
from assistant.drafting.models import resolve_model
from assistant.drafting.parallel import Completion, Job, Parallel, chosen_engine
from assistant.drafting.prompting import answered_text
from assistant.errors import Cancelled
from assistant.identities import load_me
from assistant.mail.identity import is_list_address, normalize_address, person_name
from assistant.store.db import get_setting, set_setting, writing
from trainer.edits import labeller_examples
from trainer.pairs import store
from trainer.pairs.candidates import Candidate, find_candidates, pick_useful
from trainer.pairs.errors import PairsError
from trainer.pairs.instructions import (
    CHECKS_VERSION,
    METHODS,
    TRIES,
    Instruction,
    instruction_tries,
    stop_early,
    write_instruction,
)
from trainer.pairs.prompt import Request, ReversePrompt, cut, load_prompt, with_user_examples
from trainer.pairs.scrub import load_settings, scrub_fields
from trainer.pairs.split import assign_splits

DEFAULT_LIMIT = 1000
LABEL_N_CTX = 2048  # instruction prompts are short: the examples, one email (cut to fit) and one sentence back
INPUT_CHARS = 1500  # of the email answered, kept as the pair's input: what the labeller needs to make sense of
# a reply (training and evaluation read the whole email from the store, as drafting does: trainer.prompts)
ESTIMATE_AFTER = 3  # generated pairs measured before the first estimate (when no earlier speed is known)
ESTIMATE_AGAIN = 60.0
"""Seconds of labelling after which that first estimate is made once more, from every email done by then: an
email costs one to four tries, so three emails can be far from the average (0.61-0.86x of the time taken on the
shared sets; replayed from each email's time, the second estimate was 0.70-1.16x, BENCHMARKS.md)."""
SPEED_KEY = "pairs_seconds_per_pair"  # {model identity: seconds per pair} from the last build
WIDTH_KEY = "label_width"  # the setting: emails labelled at once (None or absent: chosen for the model and machine)


def labelling_backend(db: sqlite_utils.Database, model: str | None = None) -> LlamaBackend:
    """llama.cpp on the labelling model: ``model`` > the chosen model > the embedded one (CLI and GUI alike)."""
    path, _header = resolve_model(db, model)
    return LlamaBackend(EngineSettings(model_path=str(path), n_ctx=LABEL_N_CTX))


Progress = Callable[["BuildProgress"], None]


@dataclass
class BuildProgress:
    """What a build reports to its caller; ``phase`` is start, estimate, pair or done."""

    phase: str
    done: int  # emails handled in this run (generated)
    total: int  # emails that need the model in this run
    cached: int
    fallback: int
    seconds: float
    eta: float | None = None
    estimate: float | None = None  # the whole run's expected seconds (start and estimate phases)
    estimate_from: str = ""  # "last build" or "first N emails"

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0

    @property
    def pairs_per_minute(self) -> float:
        return 60 * self.done / self.seconds if self.seconds else 0.0


@dataclass
class BuildReport:
    built: int = 0
    cached: int = 0
    filtered: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    usable: int = 0  # sent emails that passed the filters
    selected: int = 0  # of those, picked by the limit
    fallback: int = 0
    retried: int = 0
    status: str = "done"  # done | cancelled
    model: str = ""
    prompt_version: int = 0
    estimate_seconds: float | None = None
    prompt_tokens: int = 0  # sent, shared prefix included (llama.cpp reads only what differs from the last)
    completion_tokens: int = 0  # generated, rejected tries included
    generate_seconds: float = 0.0
    rejected: dict[str, int] = field(default_factory=dict)  # why model answers were rejected
    methods: dict[str, int] = field(default_factory=lambda: dict.fromkeys(METHODS, 0))
    """How the instructions built in this run were made: model (first try), retried, grammar (a forced start),
    fallback (extracted from the email)."""
    width: int = 1  # emails labelled at once (1: one at a time)

    @property
    def fallback_share(self) -> float:
        """The share of the instructions built in this run that are the extractive fallback (0.0 when none)."""
        return self.fallback / self.built if self.built else 0.0

    def to_json(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["seconds"] = round(self.seconds, 3)
        out["generate_seconds"] = round(self.generate_seconds, 3)
        out["fallback_share"] = round(self.fallback_share, 4)
        return out


@dataclass
class _Job:
    candidate: Candidate
    request: Request
    input: str
    flags: list[str]
    key: str


def model_identity(model_path: str) -> str:
    """Name, size and a hash of the first MiB: the same model file under another path is the same model."""
    path = Path(model_path)
    try:
        with path.open("rb") as f:
            head = hashlib.blake2b(f.read(1 << 20), digest_size=6).hexdigest()
        return f"{path.name}:{path.stat().st_size}:{head}"
    except OSError:
        return path.name  # a fake or a missing file: the name is all there is


def cache_key(prompt: ReversePrompt, model: str, candidate: Candidate, request: Request) -> str:
    """What an instruction depends on: the prompt (version and text), the checks, the model and the email."""
    prompt_text = json.dumps(prompt.prefix(), sort_keys=True)
    parts = [prompt.name, prompt.version, CHECKS_VERSION, prompt_text, model, candidate.content_hash,
             prompt.request_text(request)]  # fmt: skip
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode("utf-8")).hexdigest()


def _recipients(to: list[tuple[str, str]], me: frozenset[str] = frozenset()) -> str:
    """The recipients as an instruction names them, the user's own addresses (``me``, normalized) left out.
    Mailing lists, and addresses without a name (none, or the address's own local part as a mail client fills it
    in: "zhaoyang.huang"), count only when a person is not named: "Tell Robert" rather than "Tell Robert and
    dri-devel" or "Tell Robert and moderated"; a list alone is named by its address ("dri-devel"), not by a
    display name such as "moderated list:DMA BUFFER SHARING FRAMEWORK"."""
    others = [(n, a) for n, a in to if normalize_address(a) not in me]

    listed = [(n, a, is_list_address(n, a)) for n, a in others]

    def named_person(name: str, addr: str) -> bool:
        name = name.strip().strip("'\"")
        return bool(name) and name != addr.partition("@")[0]

    named = [(n, a, lst) for n, a, lst in listed if not lst and named_person(n, a)]
    names = [person_name("" if lst else n, a) for n, a, lst in (named or listed) if n or a]
    if len(names) > 3:
        return ", ".join(names[:2]) + " and others"
    return " and ".join(names)


def _contexts(db: sqlite_utils.Database, ids: list[str]) -> dict[str, tuple[str, str, str]]:
    """message_id -> (sender, subject, body) of the stored emails answered, read in batches."""
    found: dict[str, tuple[str, str, str]] = {}
    unique = sorted(set(ids))
    for i in range(0, len(unique), 500):
        chunk = unique[i : i + 500]
        marks = ",".join("?" * len(chunk))
        sql = f"SELECT message_id, from_name, from_addr, subject, body FROM messages WHERE message_id IN ({marks})"
        for mid, name, addr, subject, body in db.execute(sql, chunk):
            if (body or "").strip():
                found[mid] = (person_name(name or "", addr or ""), subject or "", body.strip())
    return found


def _plan(db, candidates, prompt, model) -> list[_Job]:
    contexts = _contexts(db, [c.in_reply_to for c in candidates if c.in_reply_to])
    me = frozenset(normalize_address(a) for a in load_me(db))
    jobs = []
    for c in candidates:
        sender, subject, text = contexts.get(c.in_reply_to, ("", "", ""))
        flags, input_text = [], ""
        if text:
            trimmed = cut(text, INPUT_CHARS)
            if trimmed != text:
                flags.append("context_trimmed")
            # Trained on as the email answered: its subject as drafting shows it (prompting._reply_block).
            input_text = answered_text(sender, subject, trimmed)
        request = Request(_recipients(c.to, me), c.subject, c.body, sender, text)
        jobs.append(_Job(c, request, input_text, flags, cache_key(prompt, model, c, request)))
    return jobs


def _record(job: _Job, instruction: str, flags: list[str], tries: int, ctx: tuple[ReversePrompt, str, Any]) -> dict:
    """The pairs row for one job; ``ctx`` is (prompt, model identity, scrub settings) of the build."""
    prompt, model, settings = ctx
    texts = {"instruction": instruction, "input": job.input, "output": job.candidate.body}
    _scrubbed, found = scrub_fields(texts, settings)
    return {
        "message_id": job.candidate.message_id,
        "thread_id": job.candidate.thread,
        **texts,
        "flags": json.dumps(sorted(set(job.flags + flags))),
        "scrubbed": json.dumps(found),
        "tries": tries,
        "prompt_version": prompt.version,
        "model": model,
        "cache_key": job.key,
    }


def build_pairs(
    db: sqlite_utils.Database,
    backend: Backend,
    *,
    limit: int | None = DEFAULT_LIMIT,
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
    prompt: ReversePrompt | None = None,
    tries: int = TRIES,
    width: int | None = None,
) -> BuildReport:
    """Make a pair for each of the ``limit`` most useful sent emails that has none yet; return what happened.

    Args:
        limit: how many emails to pick (None: all usable ones); already built ones count towards it.
        progress: called with a :class:`BuildProgress` at the start, after the first few pairs (the
            estimate), after every pair, and at the end.
        cancel: checked between pairs and while generating; a stopped build keeps every finished pair.
        prompt: the reverse-instruction prompt (default: the shipped one, with the user's own instructions from
            their corrections as the last worked examples).
        tries: model answers tried per email before the extractive fallback.
        width: emails labelled at once on one model (``backend.parallel``); None: the ``label_width`` setting,
            else a width chosen for the model and machine. A backend without a parallel engine (or width 1)
            labels one email at a time. Pairs are committed as they finish, so in parallel they are stored in
            the order they end; each email's instruction is the one it gets alone, with the same seed, except
            where batched arithmetic tips a near-tie between two tokens (see :mod:`assistant.drafting.parallel`).
    """
    started = time.perf_counter()
    show = progress or (lambda _p: None)
    prompt = prompt or with_user_examples(load_prompt(), labeller_examples(db))
    model = model_identity(backend.settings.model_path)
    ctx = (prompt, model, load_settings(db))
    report = BuildReport(model=model, prompt_version=prompt.version)
    candidates, report.filtered = find_candidates(db)
    if not candidates:
        raise PairsError(_nothing_to_build(report.filtered))
    picked = pick_useful(candidates, limit)
    report.usable, report.selected = len(candidates), len(picked)
    # Each pair is written in one transaction: a failed write (a full disk) keeps every pair before it.
    with writing(db, "build pairs again: the finished pairs are kept and it continues with the rest"):
        todo = _reuse_done_work(db, _plan(db, picked, prompt, model), ctx, report)
        speeds = get_setting(db, SPEED_KEY, {}) or {}
        state = BuildProgress("start", 0, len(todo), report.cached, 0, 0.0)
        if speeds.get(model) and todo:
            state.estimate, state.estimate_from = speeds[model] * len(todo), "last build"
            report.estimate_seconds = state.estimate
        show(replace(state))
        after = lambda t: _progress(show, state, t, report, started)  # noqa: E731
        engine = _engine(db, backend, width) if len(todo) > 1 else None
        if engine is None:
            times = _generate(db, backend, todo, ctx, report, tries, cancel, after)
        else:
            try:
                report.width = engine.width
                times = _generate_parallel(db, backend, engine, todo, ctx, report, tries, cancel, after)
            finally:
                engine.close()
        report.generate_seconds = sum(times)
        if len(times) >= 2:  # the first pair also reads the shared prefix: the rest show the steady speed
            speeds[model] = sum(times[1:]) / len(times[1:])
            set_setting(db, SPEED_KEY, speeds)
        assign_splits(db)
    report.seconds = time.perf_counter() - started
    show(BuildProgress("done", report.built, len(todo), report.cached, report.fallback, report.seconds))
    return report


def _reuse_done_work(db: sqlite_utils.Database, jobs: list[_Job], ctx: tuple, report: BuildReport) -> list[_Job]:
    """Count and skip emails whose pair is current, fill pairs from the cache; return what needs the model."""
    existing = store.existing_built(db)
    fresh = []
    for job in jobs:
        prev = existing.get(job.candidate.message_id)
        if prev and (prev[0] == job.key or prev[1] != "built" or prev[2] == "excluded"):
            report.cached += 1  # done before, or the user's edit or exclusion wins over a new model's answer
        else:
            fresh.append(job)
    cached = store.cached_instructions(db, [j.key for j in fresh])
    todo = []
    for job in fresh:
        hit = cached.get(job.key)
        if hit is None:
            todo.append(job)
            continue
        store.save_built(db, _record(job, hit["instruction"], hit["flags"], hit["tries"], ctx))
        report.cached += 1
    return todo


def _engine(db: sqlite_utils.Database, backend: Backend, width: int | None) -> Parallel | None:
    """The parallel engine for this build, or None: one email at a time."""
    return chosen_engine(backend, width, get_setting(db, WIDTH_KEY))


def _seed(job: _Job) -> int:
    return int(job.key[:8], 16)  # reproducible, and different for every email


def _generate(db, backend, todo, ctx, report: BuildReport, tries, cancel, after_pair) -> list[float]:
    """Write and store each job's instruction, one committed pair at a time; return the seconds of each."""
    prompt = ctx[0]
    times: list[float] = []
    rejected: Counter = Counter()
    try:
        for job in todo:
            if cancel is not None and cancel():
                raise Cancelled()
            written = write_instruction(backend, prompt, job.request, seed=_seed(job), tries=tries, cancel=cancel)
            _save(db, job, written, ctx, report, rejected)
            times.append(written.seconds)
            after_pair(times)
    except Cancelled:
        report.status = "cancelled"
    report.rejected = dict(rejected)
    return times


def _generate_parallel(db, backend, engine: Parallel, todo, ctx, report, tries, cancel, after_pair) -> list[float]:
    """As :func:`_generate`, with ``engine.width`` emails in flight: each email's tries run in turn, a retry
    queued as soon as the answer before it is checked, and each pair committed as it is finished. The seconds
    returned are between finished pairs (what the next one costs at this width), not each pair's own."""
    prompt = ctx[0]
    times: list[float] = []
    rejected: Counter = Counter()
    fresh = iter(todo)
    ready: deque[Job] = deque()  # retries, ahead of new emails: an email finishes before more are started
    last = [time.perf_counter()]

    def ask(job: _Job, plan, answer) -> None:
        try:
            messages, params = plan.send(answer)
        except StopIteration as finished:
            _save(db, job, finished.value, ctx, report, rejected)
            now = time.perf_counter()
            times.append(now - last[0])
            last[0] = now
            after_pair(times)
            return
        ready.append(Job(messages, params, stop_early(job.request, params), (job, plan)))

    def feed() -> Job | None:
        while not ready:
            job = next(fresh, None)
            if job is None:
                return None
            ask(job, instruction_tries(backend, prompt, job.request, seed=_seed(job), tries=tries), None)
        return ready.popleft()

    def done(asked: Job, answer: Completion) -> None:
        job, plan = asked.tag
        ask(job, plan, (answer.text, answer.chunks))

    try:
        engine.run(feed, done, cancel)
    except Cancelled:
        report.status = "cancelled"
    report.rejected = dict(rejected)
    return times


def _save(db, job: _Job, written: Instruction, ctx: tuple, report: BuildReport, rejected: Counter) -> None:
    """Commit one finished pair and its cache row, and count it."""
    cache_row = {
        "cache_key": job.key,
        "instruction": written.text,
        "flags": json.dumps(written.flags),
        "tries": written.tries,
        "prompt_tokens": written.prompt_tokens,
        "completion_tokens": written.completion_tokens,
        "seconds": round(written.seconds, 4),
        "created_at": store.now(),
    }
    store.save_built(db, _record(job, written.text, written.flags, written.tries, ctx), cache_row)
    rejected.update(written.rejected)
    report.built += 1
    report.fallback += written.method == "fallback"
    report.retried += "retried" in written.flags
    report.methods[written.method] += 1
    report.prompt_tokens += written.prompt_tokens
    report.completion_tokens += written.completion_tokens


def _nothing_to_build(filtered: dict[str, int]) -> str:
    if not filtered:
        return (
            "No sent emails are stored. Import your mail (mailvoice import PATH) and say which addresses are "
            "yours (mailvoice me ADDRESS)."
        )
    reasons = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in sorted(filtered.items()))
    return f"None of your {sum(filtered.values()):,} sent emails can be a pair ({reasons}). Import more of your mail."


def _progress(show: Progress, state: BuildProgress, times: list[float], report: BuildReport, started: float) -> None:
    total = state.total
    done = len(times)
    steady = times[1:] or times
    per_pair = sum(steady) / len(steady)
    state.phase, state.done, state.fallback = "pair", done, report.fallback
    state.seconds = time.perf_counter() - started
    state.eta = per_pair * (total - done)
    first = done == min(ESTIMATE_AFTER, total) and state.estimate is None
    again = state.estimate_from == f"first {ESTIMATE_AFTER} emails" and done < total and sum(times) >= ESTIMATE_AGAIN
    if first or again:
        state.estimate = sum(times) + per_pair * (total - done)
        state.estimate_from = f"first {done} emails"
        report.estimate_seconds = state.estimate
        show(replace(state, phase="estimate"))
    show(replace(state))
