"""Several replies at once on one llama.cpp context: the shared prompt prefix read once, continuous batching.

On a CPU, llama.cpp's decoding is memory-bound: one step for eight sequences reads the weights once, as one
step for one sequence does, so it costs little more. :class:`ParallelEngine` keeps up to ``width`` sequences
in flight (one llama.cpp sequence id each) and advances them together, one token per sequence per
``llama_decode``. A prompt's longest token prefix shared with the prompts before it (the labeller's system
text and worked examples) is read once into a reserved sequence and copied into each new sequence with
llama.cpp's KV-cache sequence copy; a sequence that ends leaves its cache behind, so a retry of the same
prompt on that slot reads only its last token again. Each sequence samples with its own sampler chain (the
same chain llama-cpp-python builds: penalties, grammar, top-k, top-p, min-p, temperature, seeded draw) and
stops on its own end-of-turn token, stop strings, ``max_tokens`` or its caller's ``until``; a freed slot takes
the next request at once. Cancel is checked between steps.

:class:`Parallel` is the interface the rest of the program uses (tests put a deterministic fake behind it):
:meth:`Parallel.run` pulls requests from a ``feed`` whenever a slot is free, so a caller can queue a retry
that depends on an answer while the other sequences go on.

Results match one-at-a-time generation with the same seed where the floating-point sums do: a batch of
several sequences can take other matrix kernels than a batch of one, and the rare token whose two best
choices are closer than that difference can come out otherwise.
"""

from __future__ import annotations

import abc
import ctypes
import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from assistant.drafting.backend import (
    Backend,
    Cancel,
    EngineSettings,
    GenerationParams,
    LlamaBackend,
    Messages,
    _grammar,
    _load,
    llama_kwargs,
    logits_processors,
    usable_cpus,
)
from assistant.errors import Cancelled, MailvoiceError

log = logging.getLogger("mailvoice.drafting")

PENALTY_LAST_N = 64  # llama-cpp-python's default window for the repeat penalty (last_n_tokens_size)
MIN_SHARED = 16  # prompt tokens worth taking from the shared prefix rather than reading the prompt whole
SMALL_MODEL = 6e9  # parameters: below this, 8 sequences; from here on (7B, 8B), 4
CPU_BATCH_FROM = 1e9
"""Parameters from which a model on the CPU is labelled several emails at a time. Below, one at a time: the
embedded 135M model on a CPU core is compute-bound (W sequences cost W single steps), and widths 2-16 measured
0.92-0.99x of width 1 while holding about 420 MB more (BENCHMARKS.md, "Training pairs")."""
KV_SHARE = 0.25  # of the machine's memory, at most, for the parallel context's KV cache


@dataclass
class Job:
    """One reply to generate: chat messages and how to sample, plus an optional early stop and a tag."""

    messages: Messages
    params: GenerationParams
    until: Callable[[str, int], bool] | None = None
    """Called with the text so far and the chunks so far after each new piece of text; True ends the reply
    there (the caller has seen enough: "already hopeless", "said enough")."""
    tag: Any = None
    """Anything the caller wants back with the completion."""


@dataclass
class Completion:
    text: str
    chunks: int  # pieces of text, as a stream would have yielded them (a token that completes no character: none)
    tokens: int  # tokens sampled
    finish: str  # stop (end of turn or a stop string), length (max_tokens), until (the caller's stop)
    prompt_tokens: int
    read_tokens: int  # of the prompt, tokens decoded for this reply (the rest came from the cache)
    seconds: float  # from admission to the end


@dataclass
class RunStats:
    """What a run of the engine did (tokens decoded show the prefix sharing at work)."""

    replies: int = 0
    prompt_tokens: int = 0  # the prompts' lengths added up
    prompt_decoded: int = 0  # prompt tokens actually decoded (shared prefixes and slot reuse excluded)
    generated: int = 0
    steps: int = 0  # llama_decode calls that advanced the sequences in flight
    peak: int = 0  # most sequences in flight at once
    seconds: float = 0.0


Feed = Callable[[], "Job | None"]
OnDone = Callable[[Job, Completion], None]


class Parallel(abc.ABC):
    """Many replies at once; ``width`` of them in flight."""

    width: int

    @abc.abstractmethod
    def run(self, feed: Feed, on_done: OnDone, cancel: Cancel | None = None) -> RunStats:
        """Generate until ``feed`` has nothing more and nothing is in flight.

        ``feed()`` is called whenever a slot is free: a :class:`Job`, or None for "nothing now" (it is asked
        again after the next reply ends, so ``on_done`` may queue more work). ``on_done(job, completion)`` is
        called as each reply ends, in the order they end. Raises :class:`Cancelled` when ``cancel()`` turns
        true (checked between steps); replies already handed to ``on_done`` stay done.
        """

    def generate_many(
        self, jobs: Iterable[Job], on_done: OnDone | None = None, cancel: Cancel | None = None
    ) -> list[Completion]:
        """Every job's completion, in the jobs' order (``on_done`` still sees them as they end)."""
        pending = list(jobs)
        index = {id(job): i for i, job in enumerate(pending)}
        out: list[Completion | None] = [None] * len(pending)
        queue = iter(pending)

        def done(job: Job, completion: Completion) -> None:
            out[index[id(job)]] = completion
            if on_done is not None:
                on_done(job, completion)

        self.run(lambda: next(queue, None), done, cancel)
        return [c for c in out if c is not None]

    def close(self) -> None:  # noqa: B027 - most engines hold nothing to free
        """Free what the engine holds (its llama.cpp context); the model itself stays loaded."""


def default_width(
    n_params: int, kv_bytes_per_token: int, n_ctx: int, memory: int | None = None, gpu: bool = False
) -> int:
    """Sequences in flight: 1 for a model under :data:`CPU_BATCH_FROM` parameters on the CPU; otherwise 8 for
    small models and 4 from 6B parameters on, fewer when their KV cache (one ``n_ctx`` per sequence, plus one
    for the shared prefix) would take more than a quarter of the memory."""
    if not gpu and n_params < CPU_BATCH_FROM:
        return 1
    width = 8 if n_params < SMALL_MODEL else 4
    memory = memory if memory is not None else _memory_bytes()
    if memory and kv_bytes_per_token:
        fits = int(KV_SHARE * memory // (kv_bytes_per_token * n_ctx)) - 1
        width = max(1, min(width, fits))
    return width


def _memory_bytes() -> int:
    try:
        import os

        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


@dataclass
class _Seq:
    job: Job
    slot: int
    prompt: list[int]
    sampler: Any
    processors: Any
    max_tokens: int
    stops: list[str]
    started: float
    read: int
    out: list[int] = field(default_factory=list)
    text: str = ""
    chunks: int = 0
    sampled: int = 0
    pending: int = -1  # the token sampled last, to be decoded in the next step
    pos: int = 0  # where the pending token goes


class ParallelEngine(Parallel):
    """llama-cpp-python's low-level batch API on the model that :class:`LlamaBackend` loads for ``settings``.

    Args:
        settings: the model and the context of ONE sequence (``n_ctx``: its prompt and reply).
        width: sequences in flight; None picks :func:`default_width` for the model and this machine.
    """

    def __init__(self, settings: EngineSettings, width: int | None = None):
        self.settings = settings
        self.llama = _load(settings)
        model = self.llama._model
        if width is None:
            gpu = bool(settings.n_gpu_layers)  # None or 0: all on the CPU
            width = default_width(model.n_params(), _kv_bytes_per_token(self.llama), settings.n_ctx, gpu=gpu)
        import llama_cpp

        self.width = max(1, min(int(width), llama_cpp.llama_max_parallel_sequences() - 1))  # one id: the prefix
        self.root = self.width  # the sequence id that holds the shared prefix
        self.n_ctx_seq = settings.n_ctx
        self._ctx: Any = None
        self._batch: Any = None
        self._root_tokens: list[int] = []
        self._slot_tokens: list[list[int]] = [[] for _ in range(self.width)]

    # --- the context -------------------------------------------------------------------------------------

    def _context(self) -> Any:
        if self._ctx is not None and self._ctx.ctx is not None:
            return self._ctx
        import llama_cpp
        from llama_cpp import _internals

        llm = self.llama
        params = type(llm.context_params).from_buffer_copy(llm.context_params)
        # One KV stream per sequence (not one unified cache): each sequence attends over its own cells only;
        # the shared prefix is copied from its stream into a new sequence's stream (a memory copy, no compute).
        params.n_seq_max = self.width + 1
        params.kv_unified = False
        params.n_ctx = self.n_ctx_seq * (self.width + 1)
        params.n_batch = params.n_ubatch = max(512, self.width)
        kwargs = llama_kwargs(self.settings)
        params.n_threads, params.n_threads_batch = kwargs["n_threads"], usable_cpus()
        self._ctx = _internals.LlamaContext(model=llm._model, params=params, verbose=False)
        if llm._lora_adapter is not None:
            adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(llm._lora_adapter)
            scales = (ctypes.c_float * 1)(llm.lora_scale)
            llama_cpp.llama_set_adapters_lora(self._ctx.ctx, adapters, 1, scales)
        self._batch = _internals.LlamaBatch(n_tokens=params.n_batch, embd=0, n_seq_max=1, verbose=False)
        self._root_tokens = []
        self._slot_tokens = [[] for _ in range(self.width)]
        return self._ctx

    def close(self) -> None:
        if self._ctx is not None:
            self._batch.close()
            self._ctx.close()
            self._ctx = self._batch = None

    # --- prompts -----------------------------------------------------------------------------------------

    def _format(self, messages: Messages, params: GenerationParams) -> tuple[list[int], list[str]]:
        """The prompt tokens and stop strings ``create_chat_completion`` would use for these messages: its own
        chat handler formats them, and is stopped just before it would generate."""
        llm = self.llama
        handler = llm.chat_handler or llm._chat_handlers.get(llm.chat_format)
        if handler is None:
            from llama_cpp import llama_chat_format

            handler = llama_chat_format.get_chat_completion_handler(llm.chat_format)
        try:
            handler(llama=_Capture(llm), messages=messages, stop=list(params.stop))
        except _Captured as got:
            prompt, stop = got.kwargs["prompt"], got.kwargs.get("stop") or []
            if isinstance(prompt, str):
                prompt = llm.tokenize(prompt.encode("utf-8"), special=True)
            return list(prompt), [stop] if isinstance(stop, str) else list(stop)
        raise MailvoiceError("the chat template produced no prompt")

    def _sampler(self, params: GenerationParams) -> Any:
        """The chain llama-cpp-python's ``Llama._init_sampler`` builds for these settings, for one sequence."""
        from llama_cpp import _internals

        llm = self.llama
        chain = _internals.LlamaSampler()
        chain.add_penalties(llm.n_vocab(), PENALTY_LAST_N, params.repeat_penalty, 0.0, 0.0)
        if params.grammar is not None:
            chain.add_grammar(llm._model, _grammar(params.grammar))
        seed = params.seed if params.seed is not None else random.randint(0, 2**31)
        if params.temperature < 0:
            chain.add_dist(seed)
        elif params.temperature == 0:
            chain.add_greedy()
        else:
            chain.add_top_k(params.top_k)
            chain.add_typical(1.0, 1)
            chain.add_top_p(params.top_p, 1)
            chain.add_min_p(params.min_p, 1)
            chain.add_temp(params.temperature)
            chain.add_dist(seed)
        return chain

    # --- running -----------------------------------------------------------------------------------------

    def run(self, feed: Feed, on_done: OnDone, cancel: Cancel | None = None) -> RunStats:
        ctx = self._context()
        stats = RunStats()
        started = time.perf_counter()
        active: dict[int, _Seq] = {}
        try:
            while True:
                if cancel is not None and cancel():
                    raise Cancelled()
                self._fill(feed, on_done, active, stats, cancel)
                if not active:
                    break
                self._step(ctx, on_done, active, stats)
        finally:
            for seq in active.values():
                seq.sampler.close()
                self._slot_tokens[seq.slot] = []  # what its cache holds is no longer known
            stats.seconds = time.perf_counter() - started
        return stats

    def _fill(self, feed: Feed, on_done: OnDone, active: dict[int, _Seq], stats: RunStats, cancel) -> None:
        """Give every free slot the next job; a reply that ends on its first token frees its slot at once."""
        while len(active) < self.width:
            if cancel is not None and cancel():
                raise Cancelled()
            job = feed()
            if job is None:
                return
            seq = self._admit(job, [s for s in range(self.width) if s not in active], stats)
            stats.peak = max(stats.peak, len(active) + 1)
            if self._take(seq, -1, on_done, stats):
                active[seq.slot] = seq

    def _admit(self, job: Job, free: list[int], stats: RunStats) -> _Seq:
        """Put a job's prompt into the cache of a free slot, reading only what no cached prefix covers."""
        prompt, stops = self._format(job.messages, job.params)
        if len(prompt) >= self.n_ctx_seq:
            raise MailvoiceError(f"a prompt of {len(prompt):,} tokens does not fit the context ({self.n_ctx_seq:,})")
        # The free slot whose own cache matches the prompt best (a retry finds the slot it ran on).
        slot = max(free, key=lambda s: (_common(self._slot_tokens[s], prompt), -s))
        own = _common(self._slot_tokens[slot], prompt)
        shared = self._share(prompt, stats)
        mem = self._ctx.memory
        import llama_cpp

        if shared > own:
            llama_cpp.llama_memory_seq_cp(mem, self.root, slot, -1, -1)  # the slot's stream becomes the prefix's
            keep = shared
        else:
            keep = own
        keep = min(keep, len(prompt) - 1)  # the last prompt token is read again: its logits start the reply
        llama_cpp.llama_memory_seq_rm(mem, slot, keep, -1)
        self._decode(prompt[keep:], keep, slot)
        self._slot_tokens[slot] = list(prompt)
        stats.prompt_tokens += len(prompt)
        stats.prompt_decoded += len(prompt) - keep
        params = job.params
        max_tokens = min(params.max_tokens, self.n_ctx_seq - len(prompt))
        processors = logits_processors(self.llama, params)
        return _Seq(job, slot, prompt, self._sampler(params), processors, max_tokens, stops,
                    time.perf_counter(), len(prompt) - keep)  # fmt: skip

    def _share(self, prompt: list[int], stats: RunStats) -> int:
        """Tokens of ``prompt`` the shared-prefix sequence holds, trimming it (or starting it) as needed."""
        import llama_cpp

        mem = self._ctx.memory
        if not self._root_tokens:  # the first prompt: read it once into the prefix sequence
            llama_cpp.llama_memory_seq_rm(mem, self.root, 0, -1)
            self._decode(prompt[:-1], 0, self.root, logits=False)
            stats.prompt_decoded += len(prompt) - 1
            self._root_tokens = list(prompt[:-1])
            return len(self._root_tokens)
        common = _common(self._root_tokens, prompt)
        if common < MIN_SHARED:
            return 0  # an unrelated prompt: read whole, and the prefix stays for the others
        if common < len(self._root_tokens):  # the part every prompt so far shares
            llama_cpp.llama_memory_seq_rm(mem, self.root, common, -1)
            self._root_tokens = self._root_tokens[:common]
        return common

    def _decode(self, tokens: list[int], pos: int, seq_id: int, logits: bool = True) -> None:
        """Read ``tokens`` into ``seq_id`` from position ``pos``; logits for the last one when asked."""
        batch = self._batch
        size = batch._n_tokens
        for start in range(0, len(tokens), size):
            part = tokens[start : start + size]
            b = batch.batch
            b.n_tokens = len(part)
            for i, token in enumerate(part):
                b.token[i], b.pos[i], b.n_seq_id[i], b.logits[i] = token, pos + start + i, 1, False
                b.seq_id[i][0] = seq_id
            b.logits[len(part) - 1] = logits and start + size >= len(tokens)
            self._ctx.decode(batch)

    def _step(self, ctx: Any, on_done: OnDone, active: dict[int, _Seq], stats: RunStats) -> None:
        """One token for every sequence in flight, in one llama_decode; then each samples its next one."""
        b = self._batch.batch
        order = list(active.values())
        b.n_tokens = len(order)
        for i, seq in enumerate(order):
            b.token[i], b.pos[i], b.n_seq_id[i], b.logits[i] = seq.pending, seq.pos, 1, True
            b.seq_id[i][0] = seq.slot
        ctx.decode(self._batch)
        stats.steps += 1
        for i, seq in enumerate(order):
            self._slot_tokens[seq.slot].append(seq.pending)
            if not self._take(seq, i, on_done, stats):
                del active[seq.slot]

    def _take(self, seq: _Seq, idx: int, on_done: OnDone, stats: RunStats) -> bool:
        """Sample the sequence's next token from batch row ``idx``; False when its reply has ended."""
        import llama_cpp

        llm = self.llama
        if seq.processors is not None:  # e.g. CloseNear: it edits this row's logits in place before sampling
            import numpy as np

            row = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(self._ctx.ctx, idx), shape=(llm.n_vocab(),))
            ids = np.asarray(seq.prompt + seq.out, dtype=np.intc)
            for process in seq.processors:
                row[:] = process(ids, row)
        token = seq.sampler.sample(self._ctx, idx)
        seq.sampled += 1
        stats.generated += 1
        finish = ""
        if llama_cpp.llama_vocab_is_eog(llm._model.vocab, token):
            finish = "stop"
        else:
            seq.out.append(token)
            text = llm.detokenize(seq.out, prev_tokens=seq.prompt).decode("utf-8", errors="ignore")
            hit = next((s for s in seq.stops if s and s in text), None)
            if hit is not None:
                text, finish = text[: text.index(hit)], "stop"
            if text != seq.text:
                seq.text = text
                seq.chunks += 1
                if not finish and seq.job.until is not None and seq.job.until(text, seq.chunks):
                    finish = "until"
            if not finish and len(seq.out) >= seq.max_tokens:
                finish = "length"
        if not finish:
            seq.pending, seq.pos = token, len(seq.prompt) + len(seq.out) - 1
            return True
        seq.sampler.close()
        stats.replies += 1
        seconds = time.perf_counter() - seq.started
        on_done(seq.job, Completion(seq.text, seq.chunks, seq.sampled, finish, len(seq.prompt), seq.read, seconds))
        return False


def _common(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _kv_bytes_per_token(llm: Any) -> int:
    """Bytes of KV cache one token takes (f16 keys and values), from the model's metadata; 0 when unknown."""
    meta = llm.metadata
    arch = meta.get("general.architecture", "")
    try:
        layers = int(meta[f"{arch}.block_count"])
        heads = int(meta[f"{arch}.attention.head_count"])
        kv_heads = int(meta.get(f"{arch}.attention.head_count_kv", heads))
        dim = int(meta[f"{arch}.embedding_length"]) // heads
    except (KeyError, ValueError, ZeroDivisionError):
        return 0
    return 2 * 2 * layers * kv_heads * dim


class _Captured(Exception):  # noqa: N818 - a signal, not an error
    def __init__(self, kwargs: dict):
        super().__init__("captured")
        self.kwargs = kwargs


class _Capture:
    """The Llama object as a chat handler sees it, except that generating hands back the prompt instead."""

    def __init__(self, llama: Any):
        self._llama = llama

    def __getattr__(self, name: str) -> Any:
        return getattr(self._llama, name)

    def create_completion(self, **kwargs: Any) -> Any:
        raise _Captured(kwargs)


def chosen_engine(backend: Backend, width: int | None, setting: Any = None) -> Parallel | None:
    """The engine for ``width`` sequences at once (None: the ``setting``'s width, else the model's default on
    this machine), or None where that is one at a time (1, or a backend with no engine)."""
    if width is None and setting is not None:
        width = int(setting)
    if width is not None and width <= 1:
        return None
    engine = engine_for(backend, width)
    if engine is not None and engine.width <= 1:
        engine.close()
        return None
    return engine


def engine_for(backend: Backend, width: int | None = None) -> Parallel | None:
    """The parallel engine for ``backend``: llama.cpp's on a :class:`LlamaBackend`, else what the backend offers
    (:meth:`Backend.parallel`: None, one at a time, unless a test's fake has one)."""
    if isinstance(backend, LlamaBackend):
        return ParallelEngine(backend.settings, width)
    return backend.parallel(width)
