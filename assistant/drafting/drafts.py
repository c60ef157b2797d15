"""Drafting an email: the one function the CLI and the GUI call, and the saved drafts it leaves.

:func:`draft` resolves the model and adapter, builds the prompt (voice, examples, the email answered),
streams each alternative through the backend and the text cleaner, and saves every draft with the settings
that made it, so a draft can be explained and reproduced later.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import json
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import sqlite_utils

from assistant.drafting.backend import Backend, Cancel, GenerationParams, LlamaBackend
from assistant.drafting.corrections import capture
from assistant.drafting.guard import RETRIES, CopyGuard, GuardReport, notice, timed_check
from assistant.drafting.incomplete import Incomplete, alone_names, check_draft, sign_as_user
from assistant.drafting.length import Length
from assistant.drafting.models import engine_settings
from assistant.drafting.parallel import Completion, Job, Parallel, chosen_engine
from assistant.drafting.postprocess import StreamCleaner, cut_spans, extract_subject, signoff_end
from assistant.drafting.prompting import (
    MAX_CHARS_PER_TOKEN,
    DraftPrompt,
    PromptError,
    ReplyContext,
    adapter_texts,
    build_prompt,
    reply_from_file,
    reply_from_store,
)
from assistant.drafting.voice import Voice, learn_voice
from assistant.errors import Cancelled, MailvoiceError
from assistant.store.db import get_setting
from assistant.store.fts import index_pending

log = logging.getLogger("mailvoice.drafting")

# Lines a chat model writes when it starts a second email or talks to the user: never part of this draft. The
# request's own lines too ("Length: about 40 words", "Write the email now, as Kay"): a small model that repeats
# them has finished its email and begun the next turn (3 of 312 evaluation drafts in QUALITY.md did).
STOP = ("\n<email>", "</email>", "<example>", "\nInstruction from", "\nUser:", "\n### ", "\nLength: about ",
        "\nWrite the email now, as")  # fmt: skip
# Every saved draft as CSV: the contract's columns first, in their order; then the recipient, the subject and
# why the draft looks unfinished (a code of incomplete.REASONS, "" for none).
EXPORT_COLUMNS = (
    "instruction",
    "generated_email",
    "created_at",
    "model",
    "adapter",
    "reply_to",
    "to",
    "subject",
    "incomplete",
)
# Streamed before a draft is written again because it repeated another person's mail or an example (guard.py).
REWRITE_MARK = "\n\n[This draft repeated part of another email; writing it again.]\n\n"
EMPTY_MARK = "\n\n[This draft had no message, only a greeting or a sign-off; writing it again.]\n\n"
_generating = threading.Lock()  # one generation at a time: a llama.cpp context is not thread-safe


@dataclass
class SavedDraft:
    id: int
    text: str
    subject: str = ""
    guard: dict[str, Any] | None = None  # what the copy guard did (GuardReport.to_json)
    incomplete: Incomplete | None = None  # why it looks unfinished (saved as its flag)

    def to_json(self) -> dict[str, Any]:
        """``id`` and ``text``; ``guard`` when the copy guard had to act on this draft; ``incomplete``
        (``{code, reason}``) when it looks unfinished."""
        acted = self.guard is not None and bool(self.guard.get("found"))
        extra = {"guard": self.guard} if acted else {}
        if self.incomplete is not None:
            extra["incomplete"] = self.incomplete.to_json()
        return {"id": self.id, "text": self.text, **extra}


@dataclass
class DraftResult:
    drafts: list[SavedDraft]
    model: str
    adapter: str | None
    seconds: float
    tokens: int
    decode_seconds: float  # generation time after each alternative's first token
    first_token_seconds: float | None  # from the call to the first token of the first alternative
    notices: list[str] = field(default_factory=list)
    examples: list[int] = field(default_factory=list)  # message ids shown as style examples

    @property
    def tokens_per_second(self) -> float:
        """Generation speed (after the first token, as llama.cpp reports "eval" speed)."""
        decoded = self.tokens - len(self.drafts)
        if decoded > 0 and self.decode_seconds > 0:
            return decoded / self.decode_seconds
        return self.tokens / self.seconds if self.seconds else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "drafts": [d.to_json() for d in self.drafts],
            "model": self.model,
            "adapter": self.adapter,
            "seconds": round(self.seconds, 3),
            "tokens_per_second": round(self.tokens_per_second, 2),
            "tokens": self.tokens,
            "first_token_seconds": None if self.first_token_seconds is None else round(self.first_token_seconds, 3),
            "notices": self.notices,
            "examples": self.examples,
        }


def draft(
    db: sqlite_utils.Database,
    instruction: str,
    *,
    reply_to: str | None = None,
    reply_file: str | Path | None = None,
    reply_context: ReplyContext | None = None,
    to: str | None = None,
    tone: str | None = None,
    length: str | Length | None = None,
    adapter: str | None = None,
    examples: bool = True,
    exclude_examples: Iterable[int] = (),
    n: int = 1,
    model: str | Path | None = None,
    seed: int | None = None,
    backend: Backend | None = None,
    on_chunk: Callable[[int, str], None] | None = None,
    on_saved: Callable[[int, SavedDraft], None] | None = None,
    cancel: Cancel | None = None,
    save: bool = True,
    to_name: str | None = None,
    about: Iterable[tuple[str, str]] = (),
    origin: dict[str, Any] | None = None,
) -> DraftResult:
    """Write ``n`` alternative drafts for ``instruction``, stream them, save them.

    Args:
        reply_to: Message-ID (or row id) of a stored email to answer.
        reply_file: a saved email (.eml) to answer instead.
        reply_context: an email to answer that is neither stored nor in a file (evaluation's pair inputs).
        to: the recipient's address: their name, and mail the user sent them, shape the draft.
        tone: free text ("friendly", "formal").
        length: short, medium or long, a :class:`Length` (evaluation's), or None: the user's usual length
            for this recipient and kind of email.
        adapter: a registered adapter's name, ``"none"``, or None for the one chosen with ``mailvoice use``.
        examples: show the user's similar past emails to the model.
        exclude_examples: message ids never shown as examples.
        model: a GGUF path overriding the chosen model.
        seed: the first alternative's seed (the next ones add 1 each); random when None.
        backend: the engine (tests pass a fake; the GUI keeps one); a llama.cpp one when None.
        on_chunk: called with (alternative index, text) as cleaned text arrives.
        on_saved: called with (alternative index, draft) as each alternative is saved (a stop later keeps it).
        cancel: polled while generating; when it returns True, :class:`Cancelled` is raised, nothing saved.
        save: False keeps the drafts out of the saved drafts (evaluation); their ids are then 0.
        to_name: the recipient's name as the user gave it (a mail merge's row), over the one their mail shows.
        about: (field, value) pairs about the recipient for the prompt (a mail merge's row: company, role...).
        origin: where the request came from (a mail merge: its key and row), saved in the draft's ``params`` in
            the same transaction as the draft itself, so a resumed merge knows exactly which rows are done.
    """
    started = time.perf_counter()
    if n < 1:
        raise PromptError("Ask for at least one draft.", cli="--n must be at least 1.")
    job = _prepare(db, instruction, started, reply_to=reply_to, reply_file=reply_file, reply_context=reply_context,
                   to=to, tone=tone, length=length, adapter=adapter, examples=examples,
                   exclude_examples=exclude_examples, model=model, seed=seed, backend=backend, on_saved=on_saved,
                   save=save, to_name=to_name, about=about, origin=origin)  # fmt: skip
    result = job.result
    with _generating:
        for i in range(n):
            show = functools.partial(on_chunk, i) if on_chunk else None
            plan = _alternative(db, job, i, show)
            t_first = _stream_plan(job.backend, plan, show, cancel)
            if result.first_token_seconds is None and t_first is not None:
                result.first_token_seconds = t_first - started
    result.seconds = time.perf_counter() - started
    return result


@dataclass
class _Prepared:
    """One request, ready to generate: its prompt, the engine it runs on, and the result its drafts go to."""

    backend: Backend
    prompt: DraftPrompt
    voice: Voice
    seed: int  # the first alternative's
    result: DraftResult
    context: dict[str, Any]
    started: float


def _prepare(
    db: sqlite_utils.Database,
    instruction: str,
    started: float,
    *,
    reply_to: str | None = None,
    reply_file: str | Path | None = None,
    reply_context: ReplyContext | None = None,
    to: str | None = None,
    tone: str | None = None,
    length: str | Length | None = None,
    adapter: str | None = None,
    examples: bool = True,
    exclude_examples: Iterable[int] = (),
    model: str | Path | None = None,
    seed: int | None = None,
    backend: Backend | None = None,
    on_saved: Callable[[int, SavedDraft], None] | None = None,
    save: bool = True,
    to_name: str | None = None,
    about: Iterable[tuple[str, str]] = (),
    origin: dict[str, Any] | None = None,
) -> _Prepared:
    """Everything :func:`draft` does before the model writes: check the request, resolve the model and adapter
    (configuring ``backend``), build the prompt, set up the copy guard."""
    if not instruction or not instruction.strip():
        raise PromptError('The instruction is empty: say what the email should do, e.g. "ask Rosa to fix the tap".')
    if sum(bool(x) for x in (reply_to, reply_file, reply_context)) > 1:
        raise PromptError("Answer one email: a stored one or one from a file, not both.",
                          cli="Give --reply-to or --reply-file, not both.")  # fmt: skip
    settings, adapter_name = engine_settings(db, model, adapter)
    if backend is None:
        backend = LlamaBackend(settings)
    else:
        backend.configure(settings)  # the GUI's engine: a changed model or adapter reloads, no restart
    index_pending(db)  # mail stored but not yet searchable (an import stopped before indexing) joins now
    reply = reply_from_store(db, reply_to) if reply_to else reply_from_file(reply_file) if reply_file else reply_context
    voice = learn_voice(db)
    prompt = build_prompt(
        db,
        instruction,
        voice,
        n_ctx=backend.n_ctx,
        count_tokens=backend.count_tokens,
        reply=reply,
        to=to,
        tone=tone,
        length=length,
        examples=examples,
        exclude=exclude_examples,
        texts=adapter_texts(settings.lora_path),
        to_name=to_name,
        about=about,
    )
    result = DraftResult(
        [],
        Path(settings.model_path).name,
        adapter_name,
        0.0,
        0,
        0.0,
        None,
        list(prompt.notices),
        [e.id for e in prompt.examples],
    )
    context = {
        "instruction": instruction.strip(),
        "reply": reply,
        "recipient": to or "",
        "request": {"tone": tone, "length": length.words if isinstance(length, Length) else length, "to": to},
        "save": save,
        "on_saved": on_saved,
        "origin": origin,
        # Against what the model could have been shown of the email answered: all of a huge one would take
        # seconds to index (minutes to search when it repeats itself) for text the model never saw.
        "guard": CopyGuard(
            db,
            reply and replace(reply, body=reply.body.strip()[: backend.n_ctx * MAX_CHARS_PER_TOKEN]),
            allowed=[instruction],
            examples=[(e.id, e.body) for e in prompt.examples],
        ),
    }
    base_seed = seed if seed is not None else random.randrange(2**31)
    return _Prepared(backend, prompt, voice, base_seed, result, context, started)


@dataclass
class _Ask:
    """What an alternative asks the model for: a reply to ``messages``, fed raw into ``cleaner``, which the
    writer's own sign-off (``names``) ends."""

    messages: list[dict[str, str]]
    params: GenerationParams
    cleaner: StreamCleaner
    names: list[str]


# An alternative's steps: it yields what it asks the model for and is sent back (first token time or None,
# chunks) once the answer is in the cleaner; it returns when its first token came.
Plan = Generator[_Ask, "tuple[float | None, int]", "float | None"]


def _stream_plan(backend: Backend, plan: Plan, show: Callable[[str], None] | None, cancel: Cancel | None):
    """Run an alternative's plan one reply at a time, streaming each reply to ``show``."""
    answer = None
    while True:
        try:
            ask = plan.send(answer)
        except StopIteration as finished:
            return finished.value
        answer = _generate(backend, ask.messages, ask.params, ask.cleaner, show, cancel, ask.names)


# --- many drafts at once ------------------------------------------------------------------------------------

WIDTH_KEY = "draft_width"  # the setting: drafts written at once by batch and eval (absent: chosen for the model)


@dataclass
class DraftJob:
    """One draft for :func:`draft_many`: its instruction, the options of :func:`draft` that are its own (``to``,
    ``reply_context``, ``origin``...), and anything the caller wants back with it."""

    instruction: str
    options: dict[str, Any] = field(default_factory=dict)
    tag: Any = None


Done = Callable[[DraftJob, "DraftResult | PromptError"], None]


def draft_many(
    db: sqlite_utils.Database,
    jobs: Iterable[DraftJob],
    on_done: Done,
    *,
    backend: Backend | None = None,
    width: int | None = None,
    cancel: Cancel | None = None,
    **common: Any,
) -> int:
    """Write one draft for each job, several at once on the model where that pays; return how many at once.

    Every job is drafted as :func:`draft` would, with the options ``common`` to all (model, adapter, examples,
    seed, save...) and its own. ``on_done(job, result)`` is called as each draft is finished (saved, when saving),
    in the order they finish; a job that cannot be drafted (:class:`PromptError`: too long for the context
    window...) is handed to it with the error instead, and the others go on. Cancel raises :class:`Cancelled`;
    drafts already handed over stay done.

    ``width``: drafts in flight at once on llama.cpp's parallel engine (:mod:`assistant.drafting.parallel`);
    None takes the ``draft_width`` setting, else what suits the model and machine (one at a time for a small model
    on the CPU, where several cost as much as one after another). At width 1 each draft runs as :func:`draft`.
    Several at once give the same drafts where the floating-point sums allow (see the engine's notes).
    """
    pending = iter(jobs)
    first = next(pending, None)
    if first is None:  # nothing to draft (a merge run again when done): no model loaded for it
        return 1
    jobs = itertools.chain([first], pending)
    settings, _adapter = engine_settings(db, common.get("model"), common.get("adapter"))
    if backend is None:
        backend = LlamaBackend(settings)
    else:
        backend.configure(settings)
    engine = drafting_engine(db, backend, width)
    if engine is None:
        for job in jobs:
            if cancel is not None and cancel():
                raise Cancelled()
            try:
                result = draft(db, job.instruction, backend=backend, cancel=cancel, **common, **job.options)
            except PromptError as exc:
                on_done(job, exc)
                continue
            on_done(job, result)
        return 1
    try:
        with _generating:
            _run_many(db, engine, backend, jobs, on_done, cancel, common)
    finally:
        engine.close()
    return engine.width


def drafting_engine(db: sqlite_utils.Database, backend: Backend, width: int | None = None) -> Parallel | None:
    """The parallel engine for drafting on ``backend`` (``width``, else the ``draft_width`` setting, else the
    model's default), or None when that is one at a time."""
    return chosen_engine(backend, width, get_setting(db, WIDTH_KEY))


def _run_many(db, engine: Parallel, backend: Backend, jobs: Iterable[DraftJob], on_done: Done, cancel, common) -> None:
    """Every job's alternative as a plan; each reply it asks for queued on ``engine`` and its answer sent back,
    a retry queued as soon as the answer before it is checked. A job is prepared (prompt built) only when a slot
    is free for it, so a long list holds a few prompts at a time."""
    pending = iter(jobs)
    ready: deque[Job] = deque()

    def ask(entry: tuple[DraftJob, _Prepared, Plan], answer: tuple[float | None, int] | None) -> None:
        job, prepared, plan = entry
        try:
            request = plan.send(answer)
        except StopIteration:
            prepared.result.seconds = time.perf_counter() - prepared.started
            on_done(job, prepared.result)
            return
        names = request.names
        # The writer's sign-off ends the email, as when streaming: the text so far is checked as it grows.
        ready.append(Job(request.messages, request.params, lambda text, _n: signoff_end(text, names) is not None,
                         (entry, request)))  # fmt: skip

    def feed() -> Job | None:
        while not ready:
            job = next(pending, None)
            if job is None:
                return None
            try:
                prepared = _prepare(db, job.instruction, time.perf_counter(), backend=backend, **common, **job.options)
            except PromptError as exc:
                on_done(job, exc)
                continue
            ask((job, prepared, _alternative(db, prepared, 0, None)), None)
        return ready.popleft()

    def done(asked: Job, completion: Completion) -> None:
        entry, request = asked.tag
        text = completion.text
        end = signoff_end(text, request.names)
        request.cleaner.feed(text if end is None else text[:end])
        request.cleaner.finish()
        ask(entry, (None, completion.chunks))

    engine.run(feed, done, cancel)


def aimed_length(prompt: DraftPrompt, voice: Voice, count_tokens: Callable[[str], int]) -> Length | None:
    """The length a draft is brought to a close at: the prompt's, leaving room for the user's own sign-off."""
    signoff = voice.usual_signoff()
    if prompt.length is None or not signoff:
        return prompt.length
    return prompt.length.closing_with(count_tokens("\n" + signoff))  # its line break too


def _alternative(db: sqlite_utils.Database, job: _Prepared, i: int, show: Callable[[str], None] | None) -> Plan:
    """Generate, clean, guard and save alternative ``i`` into ``job.result``; return when its first token came.

    A draft that repeats 50+ characters of another person's mail (or of a shown style example) is written again
    with another seed, up to ``RETRIES`` times, and the runs the last version still repeats are cut out (see
    guard.py). So is a draft with no message (empty, or only a greeting or a sign-off: small models and adapters
    trained on short mail write "Best regards, Jeff" alone now and then); a last one still without is flagged.

    A plan (see :data:`Plan`): whoever runs it generates what it asks for, one reply at a time
    (:func:`_stream_plan`) or many plans' replies at once (:func:`draft_many`).
    """
    backend, prompt, voice, result, context = job.backend, job.prompt, job.voice, job.result, job.context
    seed = job.seed + i
    length = aimed_length(prompt, voice, backend.count_tokens)
    params = GenerationParams(
        max_tokens=prompt.max_tokens,
        seed=seed,
        stop=STOP,
        aim_tokens=length.aim_tokens if length else None,
        floor_tokens=length.floor_tokens if length else None,
        closings=voice.closings(),
        signed=voice.signed_as(),
    )
    names = [voice.first_name, voice.name]
    t0 = time.perf_counter()
    cleaner = StreamCleaner(me=voice.first_name, recipient=prompt.recipient)
    t_first, chunks = yield _Ask(prompt.messages, params, cleaner, names)
    count = last = backend.count_tokens(cleaner.raw) if cleaner.raw else 0
    report = GuardReport()
    copied = timed_check(context["guard"], cleaner.text, report)
    examples_only = bool(copied) and all(c.from_examples for c in copied)
    signers = alone_names(names, prompt.others)
    hollow, tries = _hollow(cleaner.text, signers), 0
    rewrote_hollow = hollow
    while (copied or hollow) and tries < RETRIES:
        tries += 1
        report.rewritten += bool(copied)
        if show:
            show(REWRITE_MARK if copied else EMPTY_MARK)
        params = replace(params, seed=seed + 7919 * tries)  # another sample of the same prompt
        cleaner = StreamCleaner(me=voice.first_name, recipient=prompt.recipient)
        _t, chunks = yield _Ask(prompt.messages, params, cleaner, names)
        last = backend.count_tokens(cleaner.raw) if cleaner.raw else 0
        count += last
        copied = timed_check(context["guard"], cleaner.text, report)
        hollow = _hollow(cleaner.text, signers)
    text = cleaner.text
    if copied:
        report.removed = copied
        text = cut_spans(text, [(c.start, c.end) for c in copied])
    if report.acted:
        result.notices.append(notice(i, report, examples_only))
    if rewrote_hollow:
        result.notices.append(f"Draft {i + 1} came out as only a greeting or a sign-off; it was written again.")
    text, signed_as = sign_as_user(text, prompt.others, voice)
    if signed_as:
        result.notices.append(f"Draft {i + 1} was signed {signed_as}; it is signed with your name instead.")
    ended = time.perf_counter()
    result.decode_seconds += ended - (t_first or ended)
    result.tokens += count
    record = {
        **params.to_json(),
        "alternative": i,
        **context["request"],
        "examples": result.examples,
        "n_ctx": backend.n_ctx,
        "prompts": prompt.versions,
        "notices": prompt.notices,
        "first_token_seconds": None if t_first is None else round(t_first - t0, 4),
        "guard": report.to_json(),
        **({"origin": context["origin"]} if context["origin"] else {}),
    }
    subject = extract_subject(cleaner.raw)
    # A stream yields about a token a chunk; counting the text again catches chunks that held several.
    flag = check_draft(text, context["instruction"], hit_limit=max(chunks, last) >= params.max_tokens, names=names)
    if not context["save"]:
        result.drafts.append(SavedDraft(0, text, subject, report.to_json(), flag))
        return t_first
    draft_id = save_draft(
        db,
        instruction=context["instruction"],
        reply=context["reply"],
        recipient=context["recipient"],
        subject=subject,
        text=text,
        model=result.model,
        adapter=result.adapter,
        params=record,
        seconds=ended - t0,
        tokens=count,
        flag=flag.code if flag else "",
    )
    saved = SavedDraft(draft_id, text, subject, report.to_json(), flag)
    result.drafts.append(saved)
    if context["on_saved"]:
        context["on_saved"](i, saved)
    return t_first


def _hollow(text: str, names: list[str]) -> bool:
    """The draft has no message: it is empty, or only a greeting or a sign-off (or one of ``names`` alone)."""
    found = check_draft(text, names=names)
    return found is not None and found.code in ("empty", "signoff_only")


def _generate(
    backend: Backend,
    messages: list[dict[str, str]],
    params: GenerationParams,
    cleaner: StreamCleaner,
    show: Callable[[str], None] | None,
    cancel: Cancel | None,
    names: list[str],
) -> tuple[float | None, int]:
    """Stream one reply through ``cleaner`` to ``show``; return when its first token came (or None) and how
    many chunks the backend streamed."""
    t_first, chunks = None, 0
    stream = backend.stream(messages, params, cancel)
    try:
        for chunk in stream:
            chunks += 1
            if t_first is None:
                t_first = time.perf_counter()
            # The user's own sign-off ends the email, whatever the model thinks (small ones go on with a
            # second email or a signature block): cut the chunk there, before anything of it is shown.
            end = signoff_end(cleaner.raw + chunk, names)
            if end is not None:
                chunk = chunk[: max(end - len(cleaner.raw), 0)]
            text = cleaner.feed(chunk)
            if text and show:
                show(text)
            if end is not None:
                break
    finally:
        close = getattr(stream, "close", None)
        if close:
            close()  # stops llama.cpp now rather than when the generator is collected
    if cancel is not None and cancel():
        raise Cancelled()
    rest = cleaner.finish()
    if rest and show:
        show(rest)
    return t_first, chunks


def save_draft(
    db: sqlite_utils.Database,
    *,
    instruction: str,
    reply: Any,
    recipient: str,
    subject: str,
    text: str,
    model: str,
    adapter: str | None,
    params: dict[str, Any],
    seconds: float,
    tokens: int,
    flag: str = "",
) -> int:
    """Store a draft; ``flag`` says why it looks unfinished (a code of ``incomplete.REASONS``, "" for none)."""
    with db.conn:
        cursor = db.execute(
            "INSERT INTO drafts (instruction, context_kind, context, recipient, subject, text, model, "
            "adapter, params, created_at, seconds, tokens, flag) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                instruction,
                reply.kind if reply else "",
                reply.source if reply else "",
                recipient,
                subject,
                text,
                model,
                adapter or "",
                json.dumps(params, ensure_ascii=False),
                dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                round(seconds, 3),
                tokens,
                flag,
            ],
        )
    return int(cursor.lastrowid)


def save_partial(
    db: sqlite_utils.Database,
    instruction: str,
    text: str,
    *,
    reply_to: str | None = None,
    to: str | None = None,
    tone: str | None = None,
    length: str | None = None,
    flag: str = "partial",
) -> int:
    """Keep a draft that was stopped before it ended (flagged ``partial``), or text typed into an empty page
    (``flag=""``); return its id.

    The text is saved as shown: nothing more of it exists. The model and adapter recorded are the ones chosen
    now, which wrote it unless they were changed while it was written.
    """
    if not text.strip():
        raise PromptError("There is nothing to save: the draft is empty.")
    try:
        settings, adapter = engine_settings(db)
        model = Path(settings.model_path).name
    except MailvoiceError:  # the model file went away since: the draft is kept all the same
        model, adapter = "", None
    reply = ReplyContext(reply_to, "message", "", "", "", "", "") if reply_to else None
    return save_draft(
        db,
        instruction=instruction.strip(),
        reply=reply,
        recipient=to or "",
        subject="",
        text=text.strip(),
        model=model,
        adapter=adapter,
        params={"tone": tone, "length": length, "to": to, "stopped": flag == "partial"},
        seconds=0.0,
        tokens=0,
        flag=flag,
    )


class DraftGone(MailvoiceError):
    """The saved draft to update was deleted meanwhile."""


def update_draft(db: sqlite_utils.Database, draft_id: int, text: str) -> None:
    """Store the user's edit of draft ``draft_id``: its text is replaced, what the model wrote is kept.

    The first edit keeps the generated text in ``params["generated_text"]``, so a draft can still be explained
    (and evaluated) as the model wrote it; every edit sets ``params["edited_at"]`` and records a correction
    (:mod:`assistant.drafting.corrections`).
    """
    with db.conn:
        row = db.execute("SELECT text, params FROM drafts WHERE id = ?", [draft_id]).fetchone()
        if row is None:
            raise DraftGone(
                f"Draft #{draft_id} is no longer saved (it was deleted on the Drafts page): copy the text, "
                "or generate a new draft."
            )
        try:
            params = json.loads(row[1] or "{}")
        except ValueError:
            params = {}
        params = params if isinstance(params, dict) else {}
        params.setdefault("generated_text", row[0])
        params["edited_at"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        db.execute(
            "UPDATE drafts SET text = ?, params = ? WHERE id = ?",
            [text, json.dumps(params, ensure_ascii=False), draft_id],
        )
    capture(db, draft_id, text, "saved")  # what the user kept: a correction to learn from


def delete_drafts(db: sqlite_utils.Database, ids: Iterable[int]) -> int:
    """Delete the saved drafts ``ids`` (those already gone are ignored); return how many were deleted."""
    ids = list(dict.fromkeys(int(i) for i in ids))
    if not ids:
        return 0
    deleted = 0
    with db.conn:
        for start in range(0, len(ids), 500):  # SQLite limits the parameters of one statement
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            deleted += db.execute(f"DELETE FROM drafts WHERE id IN ({marks})", chunk).rowcount
    return deleted


def list_drafts(db: sqlite_utils.Database, limit: int | None = None) -> list[dict[str, Any]]:
    """Saved drafts, newest first (for the GUI's history)."""
    sql = "SELECT * FROM drafts ORDER BY id DESC" + (" LIMIT ?" if limit else "")
    return [dict(r) for r in db.query(sql, [limit] if limit else [])]


def export_rows(db: sqlite_utils.Database) -> Iterator[list[Any]]:
    """Every saved draft as a row of :data:`EXPORT_COLUMNS`, oldest first ("" for what is missing)."""
    if not db["drafts"].exists():
        return
    rows = db.execute(
        "SELECT instruction, text, created_at, model, adapter, context, recipient, subject, flag FROM drafts "
        "ORDER BY id"
    )
    for row in rows:
        yield ["" if v is None else v for v in row]
