"""Drafting speed against bare llama-cpp-python on the same model and prompt, and example retrieval at scale.

Usage (from the repository root, inside .venv):
    python bench/draft_bench.py                              # embedded SmolLM2-135M, 5 rounds, 10k + 100k rows
    python bench/draft_bench.py --model PATH.gguf --rounds 7
    python bench/draft_bench.py --out drafting-section.md # also write the results as a Markdown section
    nice taskset -c 0 python bench/draft_bench.py --generation --rounds 9   # only generation, pinned to one CPU
    python bench/draft_bench.py --lora [ADAPTER.gguf]      # only: base, base + unmerged LoRA, merged models
    python bench/draft_bench.py --recipients --rounds 7    # only: first draft to a recipient, scan vs index
    python bench/draft_bench.py --storing --rounds 9       # only: the recipients index's cost when storing mail

Generation: each round runs the bare ``Llama.create_chat_completion(stream=True)`` and the full drafting path
(``assistant.drafting.draft``: model check, voice, example retrieval, prompt budget, streaming cleaner,
saving) on the same prompt, seed and sampling settings, alternating which goes first. Both engines are
loaded and warmed up before timing (load time is reported apart), and each run starts from an empty KV
cache (``reset()``) so both pay for reading the whole prompt. Both take the drafting path's engine settings
(threads: every CPU the process may use, so pin it with ``taskset`` to compare on one CPU). Reported: medians
over the rounds of time to first token (from the call) and generation tokens/s, timed the same way on both
sides (:class:`_Clock`: streamed chunks after the first over the time from the first to the last), the
per-round ratio, and this process's CPU time per generated token.

LoRA (``--lora``): the base alone, the base with a LoRA adapter applied by llama.cpp at every token (as
drafting does with an adapter chosen), and that adapter merged into copies of the base (``trainer.merge``:
f16, q8_0 and the base's own type), all loaded at once and run on the same prompt in a rotated order each
round; without a file, a random rank-16 adapter on every projection (what training makes by default: speed
depends on rank and targets, not on values).

Retrieval: N synthetic sent emails are inserted straight into a fresh store, then ``select_examples`` (FTS5
BM25, recipient and domain tiers, budget fitting) is timed for varied instructions, with and without a
recipient.

Recipients (``--recipients``): the first draft to someone, whose mail to that person and organisation must be
found among all stored mail: ``select_examples`` with the recipients index (``sent_recipients``) against the
same call with the scan of the messages table it replaced (kept here as the baseline), on one store, pinned
to one CPU, each round timing both for every recipient in alternating order; and what the index costs when
mail is stored (the importer's rows: no index, the insert trigger that kept it before, the bulk fill that keeps
it today; rotated rounds). ``--storing`` runs that last part alone.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(1, str(REPO / "tests"))  # random_lora (a stand-in adapter of a chosen rank), mailgen
INSTRUCTIONS = [
    "ask Rosa if the plumber can come on Monday morning to fix the kitchen faucet",
    "tell Kenji the onboarding revamp slips a week because of hiring",
    "thank Grace for the workshop notes and propose a follow-up on Thursday",
    "remind the team that the Q3 budget draft is due Friday",
    "decline the conference invitation politely, too much travel this quarter",
    "ask Tomás to double-check invoice INV-9466 for the website refresh",
    "congratulate Leila on the new role and suggest lunch next week",
    "send Wei the status of the data migration and the new date",
]
WORDS = (  # noqa: SIM905 - a word list reads better as words
    "budget forecast invoice plumber faucet lease meeting schedule review draft contract hiring onboarding "
    "migration release customer roadmap launch workshop offsite travel dinner weekend report numbers "
    "deadline proposal feedback design hosting contractor quarter renewal payment receipt kitchen repair "
    "interview candidate partner portal dashboard metrics lighthouse heron shipment warehouse"
).split()
FILLER = (
    "the",
    "and",
    "we",
    "I",
    "can",
    "will",
    "next",
    "week",
    "please",
    "thanks",
    "for",
    "on",
    "about",
    "it",
    "that",
    "is",
    "to",
    "a",
    "of",
    "let",
    "me",
    "know",
    "if",
    "works",
    "by",
    "Monday",
    "Friday",
)


def _load_average() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def _mailbox_store(root: Path):
    import mailgen as gen

    from assistant.importer import import_paths
    from assistant.store import open_store

    mbox = root / "Sent.mbox"
    gen.write_mbox(mbox, gen.generate_messages(600, seed=5))
    db = open_store(root / "home")
    import_paths(db, [mbox], me=["alex.morgan@example.org"])
    return db


class _Clock:
    """Generation timing, taken the same way on both sides: when each streamed chunk (about a token) reaches the
    caller, and this process's CPU time then. Speed is chunks after the first over the time from the first to
    the last, so each side's own work between chunks (the drafting path's cleaning, sign-off detection and
    callback; the logits processor inside the stream) is in it, and reading the prompt is not."""

    def __init__(self):
        self.chunks, self.seconds, self.cpu = 0, 0.0, 0.0

    def timed(self, stream):
        first = last = cpu_first = cpu_last = None
        n = 0
        for item in stream:
            last, cpu_last = time.perf_counter(), time.process_time()
            if first is None:
                first, cpu_first = last, cpu_last
            n += 1
            yield item
        if n > 1:  # a retry (the copy guard, an empty draft) streams again: all streams count
            self.chunks += n - 1
            self.seconds += last - first
            self.cpu += cpu_last - cpu_first

    @property
    def tps(self) -> float:
        return self.chunks / self.seconds if self.seconds else float("nan")


class _Timed:
    """Wraps the drafting path's backend to see, from inside, where its time goes.

    ``called``: when the drafting path asked the engine for tokens (all its work before that is overhead
    added before the first token); ``consumer``: time the drafting path spent on each chunk before asking for
    the next one (cleaning, sign-off detection, callbacks: the per-token cost it adds to generation);
    ``clock``: generation timed as the bare side's is (:class:`_Clock`).
    """

    def __init__(self, inner):
        self.inner = inner
        self.clock = _Clock()

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def configure(self, settings):
        self.inner.configure(settings)

    def stream(self, messages, params, cancel=None):
        self.called = time.perf_counter()
        self.consumer = 0.0
        self.first = self.last = None
        for chunk in self.clock.timed(self.inner.stream(messages, params, cancel)):
            self.last = time.perf_counter()
            self.first = self.first or self.last
            yield chunk
            self.consumer += time.perf_counter() - self.last


def bench_generation(model: str | None, rounds: int) -> dict:
    from llama_cpp import Llama

    from assistant.drafting import LlamaBackend, draft, engine_settings
    from assistant.drafting.backend import GenerationParams, llama_kwargs
    from assistant.drafting.drafts import STOP, aimed_length
    from assistant.drafting.prompting import build_prompt
    from assistant.drafting.voice import learn_voice

    load_before = _load_average()
    tmp = Path(tempfile.mkdtemp(prefix="draft-bench-"))
    db = _mailbox_store(tmp)
    settings, _ = engine_settings(db, model, "none")
    engine = LlamaBackend(settings)
    load_ours = engine.load()
    started = time.perf_counter()
    kwargs = llama_kwargs(settings)  # the very same engine settings as the drafting path
    bare = Llama(settings.model_path, **kwargs)
    load_bare = time.perf_counter() - started

    # A long email: enough tokens a run for a steady speed (a short one is a few dozen tokens and ends in noise).
    instruction, to, length = INSTRUCTIONS[0], "rosa@properties.example.net", "long"
    voice = learn_voice(db)
    prompt = build_prompt(db, instruction, voice, n_ctx=engine.n_ctx, count_tokens=engine.count_tokens,
                          to=to, length=length)  # fmt: skip
    aimed = aimed_length(prompt, voice, engine.count_tokens)  # where drafting brings it to a close
    prompt_tokens = sum(engine.count_tokens(m["content"]) for m in prompt.messages)
    p = GenerationParams()

    def run_bare(seed: int) -> dict:
        bare.reset()  # an empty KV cache: the whole prompt is read again, as in the drafting run
        clock = _Clock()
        t0 = time.perf_counter()
        first = None
        stream = bare.create_chat_completion(
            prompt.messages, stream=True, max_tokens=prompt.max_tokens, temperature=p.temperature, top_p=p.top_p,
            top_k=p.top_k, min_p=p.min_p, repeat_penalty=p.repeat_penalty, seed=seed, stop=list(STOP),
        )  # fmt: skip
        texts = (chunk["choices"][0]["delta"].get("content") for chunk in stream)
        for _text in clock.timed(text for text in texts if text):
            first = first or time.perf_counter()
        return {"ttft": first - t0, "tps": clock.tps, "tokens": clock.chunks + 1, "cpu": clock.cpu / clock.chunks}

    def run_ours(seed: int) -> dict:
        engine.llama.reset()
        backend = _Timed(engine)
        shown: list[float] = []
        t0 = time.perf_counter()
        result = draft(db, instruction, to=to, length=length, seed=seed, backend=backend,
                       on_chunk=lambda _i, _t: shown or shown.append(time.perf_counter()))  # fmt: skip
        decode = backend.last - backend.first
        clock = backend.clock
        return {"ttft": result.first_token_seconds, "tps": clock.tps, "tokens": clock.chunks + 1,
                "cpu": clock.cpu / clock.chunks,
                "visible": shown[0] - t0, "before_engine": backend.called - t0,
                "consumer_share": backend.consumer / decode if decode > 0 else 0.0}  # fmt: skip

    run_bare(0), run_ours(0)  # warm-up: page the weights in, compile the chat template, fill caches
    bare_rows, our_rows = [], []
    for r in range(rounds):
        seed = 100 + r
        pair = (run_ours, run_bare) if r % 2 else (run_bare, run_ours)
        results = {f: f(seed) for f in pair}
        bare_rows.append(results[run_bare])
        our_rows.append(results[run_ours])
        b, o = bare_rows[-1], our_rows[-1]
        print(f"  round {r + 1}: bare {b['tps']:.1f} tok/s, first token {b['ttft'] * 1000:.0f} ms | drafting "
              f"{o['tps']:.1f} tok/s ({o['tps'] / b['tps']:.3f}x), first token {o['ttft'] * 1000:.0f} ms, "
              f"{o['before_engine'] * 1000:.1f} ms before the engine, {o['consumer_share']:.2%} of decode time in "
              "our code", file=sys.stderr)  # fmt: skip

    bare.close()

    def med(rows: list[dict], key: str) -> float:
        return _median([row[key] for row in rows])

    ratios = [o["tps"] / b["tps"] for o, b in zip(our_rows, bare_rows, strict=True)]
    cpu_ratios = [b["cpu"] / o["cpu"] for o, b in zip(our_rows, bare_rows, strict=True)]
    return {
        "model": Path(settings.model_path).name, "n_ctx": settings.n_ctx, "threads": kwargs["n_threads"],
        "threads_batch": kwargs["n_threads_batch"], "cpus": sorted(os.sched_getaffinity(0)),
        "prompt_tokens": prompt_tokens, "load_before": load_before, "max_tokens": prompt.max_tokens, "rounds": rounds,
        "aim_tokens": aimed.aim_tokens if aimed else None,
        "load_ours_s": load_ours, "load_bare_s": load_bare,
        "bare_ttft_ms": med(bare_rows, "ttft") * 1000, "ours_ttft_ms": med(our_rows, "ttft") * 1000,
        "ours_visible_ms": med(our_rows, "visible") * 1000, "before_engine_ms": med(our_rows, "before_engine") * 1000,
        "before_engine_all": [o["before_engine"] * 1000 for o in our_rows],
        "consumer_share": med(our_rows, "consumer_share"),
        "consumer_all": [o["consumer_share"] for o in our_rows],
        "bare_tps": med(bare_rows, "tps"), "ours_tps": med(our_rows, "tps"),
        "ratio": _median(ratios), "ratio_all": ratios, "cpu_ratio": _median(cpu_ratios), "cpu_ratio_all": cpu_ratios,
        "bare_tps_all": [b["tps"] for b in bare_rows], "ours_tps_all": [o["tps"] for o in our_rows],
        "bare_tokens": med(bare_rows, "tokens"), "ours_tokens": med(our_rows, "tokens"),
        "bare_tokens_all": [b["tokens"] for b in bare_rows], "ours_tokens_all": [o["tokens"] for o in our_rows],
        "bare_cpu_ms": med(bare_rows, "cpu") * 1000, "ours_cpu_ms": med(our_rows, "cpu") * 1000,
    }  # fmt: skip


LORA_VARIANTS = ("base", "base + LoRA", "merged f16", "merged q8_0", "merged same")


def bench_lora(
    model: str | None, adapter: str | None, rounds: int, max_tokens: int = 128, threads: int | None = None
) -> dict:
    """Base alone, base + the unmerged adapter, and the adapter merged (f16, q8_0, same type): one prompt.

    Each engine generates exactly ``max_tokens`` tokens (end-of-text is masked out) so all do the same work;
    every round runs all of them in a rotated order, after a warm-up, from an empty KV cache.
    """
    from llama_cpp import Llama
    from random_lora import random_adapter  # a test helper: tests/ is on sys.path (above)

    from assistant.drafting import engine_settings
    from assistant.drafting.backend import EngineSettings, GenerationParams, llama_kwargs
    from assistant.drafting.prompting import build_prompt
    from assistant.drafting.voice import learn_voice
    from trainer.merge import merge_adapter

    load_before = _load_average()
    tmp = Path(tempfile.mkdtemp(prefix="draft-bench-lora-"))
    db = _mailbox_store(tmp)
    settings, _ = engine_settings(db, model, "none")
    base = Path(settings.model_path)
    if adapter is None:  # speed depends on rank and targets, not on values: training's defaults, r=16, all seven
        adapter_path = random_adapter(base, tmp / "adapter" / "adapter.gguf", rank=16, strength=0.05)
    else:
        adapter_path = Path(adapter)
    files = {"base": (base, None), "base + LoRA": (base, adapter_path)}
    merges = {}
    for kind in ("f16", "q8_0", "same"):
        info = merge_adapter(base, adapter_path, tmp / f"merged-{kind}.gguf", kind, expected_base={})
        files[f"merged {kind}"] = (Path(info.path), None)
        merges[kind] = {"seconds": info.seconds, "size": info.size_bytes, "types": info.written_types}
        print(f"  merged {kind}: {info.seconds:.1f}s, {info.size_bytes / 1e6:.0f} MB", file=sys.stderr)
    engines, loads = {}, {}
    for name, (path, lora) in files.items():
        started = time.perf_counter()
        kwargs = llama_kwargs(EngineSettings(str(path), settings.n_ctx, threads, lora_path=str(lora) if lora else None))
        if threads:  # reading the prompt too: on a busy machine, threads beyond a free CPU only spin
            kwargs["n_threads_batch"] = threads
        engines[name] = Llama(str(path), **kwargs)
        loads[name] = time.perf_counter() - started
    probe = engines["base"]
    prompt = build_prompt(db, INSTRUCTIONS[0], learn_voice(db), n_ctx=settings.n_ctx,
                          count_tokens=lambda t: len(probe.tokenize(t.encode(), add_bos=False)))  # fmt: skip
    p = GenerationParams()
    no_end = {probe.token_eos(): -float("inf")}

    def run(llm, seed: int) -> dict:
        llm.reset()
        t0 = time.perf_counter()
        stamps = []
        stream = llm.create_chat_completion(
            prompt.messages, stream=True, max_tokens=max_tokens, temperature=p.temperature, top_p=p.top_p,
            top_k=p.top_k, min_p=p.min_p, repeat_penalty=p.repeat_penalty, seed=seed, logit_bias=no_end,
        )  # fmt: skip
        for chunk in stream:
            if chunk["choices"][0]["delta"].get("content"):
                stamps.append(time.perf_counter())
        return {"ttft": stamps[0] - t0, "tps": (len(stamps) - 1) / (stamps[-1] - stamps[0]), "chunks": len(stamps)}

    names = list(engines)
    for name in names:
        run(engines[name], 0)  # warm-up: page the weights in
    rows: dict[str, list[dict]] = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            rows[name].append(run(engines[name], 100 + r))
        print("  round " + str(r + 1) + ": " + ", ".join(f"{n} {rows[n][-1]['tps']:.1f}" for n in names) + " tok/s",
              file=sys.stderr)  # fmt: skip
    ids = probe.tokenize("\n\n".join(m["content"] for m in prompt.messages).encode(), add_bos=True)
    for llm in engines.values():
        llm.close()
    choices = _choices(files, ids, threads)
    out = {"model": base.name, "adapter": "random r=16, 7 projections" if adapter is None else adapter_path.name,
           "threads": threads or llama_kwargs(settings)["n_threads"], "rounds": rounds, "max_tokens": max_tokens,
           "load_before": load_before, "merges": merges, "variants": {}}  # fmt: skip
    for name in names:
        tps = [row["tps"] for row in rows[name]]
        out["variants"][name] = {
            "tps": _median(tps), "ttft_ms": _median([row["ttft"] for row in rows[name]]) * 1000,
            "tps_all": tps, "load_ms": loads[name] * 1000, "size": files[name][0].stat().st_size
            + (files[name][1].stat().st_size if files[name][1] else 0),
            "ratio": _median([t / b["tps"] for t, b in zip(tps, rows["base"], strict=True)]),
            "ttft_ratio": _median([x["ttft"] / b["ttft"] for x, b in zip(rows[name], rows["base"], strict=True)]),
            **choices[name],
        }  # fmt: skip
    out["positions"] = len(ids) - 1
    return out


def _choices(files: dict, ids: list[int], threads: int | None) -> dict[str, dict]:
    """How each engine's next-token choices over ``ids`` compare with base + LoRA's (what merging must keep):
    ``agreement`` over all positions, ``sure`` where base + LoRA's choice leads by a logit or more (near-ties
    flip on rounding alone), ``kept`` where the adapter changes the base's choice."""
    import numpy as np

    from trainer.parity import DECISIVE, _llama

    scores = {}
    for name, (path, lora) in files.items():
        with _llama(path, lora, len(ids) + 8, threads) as llm:
            llm.eval(ids)
            scores[name] = np.asarray(llm.scores[: len(ids) - 1]).copy()
    top = {name: s.argmax(-1) for name, s in scores.items()}
    reference, ranked = top["base + LoRA"], np.sort(scores["base + LoRA"], axis=-1)
    sure, changed = ranked[:, -1] - ranked[:, -2] >= DECISIVE, reference != top["base"]
    return {
        name: {"agreement": float(np.mean(t == reference)), "sure": float(np.mean((t == reference)[sure])),
               "kept": float(np.mean((t == reference)[changed])), "sure_positions": int(sure.sum())}
        for name, t in top.items()
    }  # fmt: skip


def lora_markdown(res: dict, command: str) -> str:
    import llama_cpp

    sure = res["variants"]["base"]["sure_positions"]
    lines = [
        "### An adapter applied at draft time against the same adapter merged into the model",
        "",
        f"Command: `{command}`  ",
        f"Machine: {_cpu_name()}, {os.cpu_count()} CPUs, llama-cpp-python {llama_cpp.__version__}; model "
        f"{res['model']}, adapter {res['adapter']}, {res['threads']} threads, CPU only. Load average (1 min) at "
        f"the start: {res['load_before']:.1f}, at the end: {_load_average():.1f}.",
        "",
        f"Same drafting prompt, seed and sampling for all; exactly {res['max_tokens']} new tokens each (end of "
        f"text masked out), KV cache emptied before each run; medians of {res['rounds']} rounds, each running "
        "all five in a rotated order after a warm-up. Ratios are per round against the base alone in that "
        "round, then the median.",
        "",
        f"Same choices: the top-1 next token at each of the prompt's {res['positions']} positions is base + LoRA's "
        f"(*agreement*); the same where base + LoRA leads by a logit or more ({sure} positions: *where sure*); and "
        "where the adapter changes the base's choice (*adapter kept*).",
        "",
        "| | on disk | tokens/s | vs base | time to first token | vs base | agreement | where sure | adapter kept |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, v in res["variants"].items():
        lines.append(f"| {name} | {v['size'] / 1e6:,.0f} MB | {v['tps']:.1f} | {v['ratio']:.2f}× "
                     f"| {v['ttft_ms']:.0f} ms | {v['ttft_ratio']:.2f}× | {v['agreement']:.1%} | {v['sure']:.1%} "
                     f"| {v['kept']:.1%} |")  # fmt: skip
    lines += ["", "Merging took " + ", ".join(f"{k} {m['seconds']:.0f} s" for k, m in res["merges"].items())
              + ". Tokens/s per round: " + "; ".join(f"{n} " + ", ".join(f"{x:.1f}" for x in v["tps_all"])
                                                   for n, v in res["variants"].items()) + "."]  # fmt: skip
    return "\n".join(lines) + "\n"


def _cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line]
        if names:
            return names[0]
    return platform.processor() or platform.machine()


def _fill(db, n: int, seed: int = 1) -> None:
    from assistant.store.fts import index_pending
    from assistant.store.recipients import index_recipients_pending

    rng = random.Random(seed)
    domains = [f"org{i}.example" for i in range(50)] + ["gmail.com"]
    people = [(f"Person{i} Last{i}", f"p{i}@{rng.choice(domains)}") for i in range(500)]
    rows = []
    for i in range(n):
        topic = rng.sample(WORDS, 3)
        words = [rng.choice(FILLER if rng.random() < 0.7 else topic) for _ in range(rng.randint(30, 160))]
        name, addr = rng.choice(people)
        body = f"Hi {name.split()[0]},\n\n{' '.join(words).capitalize()}.\n\nBest,\nAlex"
        date = f"20{rng.randint(15, 24)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T10:00:00+00:00"
        rows.append(
            (
                f"b{i}@bench",
                date,
                "Alex Morgan",
                "alex@example.org",
                "alex@example.org",
                json.dumps([[name, addr]]),
                "[]",
                " ".join(topic).title(),
                body,
                0,
                1,
                0,
            )
        )
    with db.conn:
        db.conn.executemany(
            "INSERT INTO messages (message_id, date, from_name, from_addr, from_key, to_json, cc_json, subject, "
            "body, is_forward, sent_by_me, automated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    index_pending(db)  # as the importer does
    index_recipients_pending(db)


def bench_retrieval(sizes: list[int], repeats: int = 3) -> list[dict]:
    from assistant.drafting import examples
    from assistant.drafting.prompting import build_prompt
    from assistant.drafting.voice import learn_voice
    from assistant.store import open_store

    def approx(text: str) -> int:
        return (len(text) + 3) // 4

    out = []
    for n in sizes:
        db = open_store(Path(tempfile.mkdtemp(prefix=f"draft-bench-{n}-")))
        started = time.perf_counter()
        _fill(db, n)
        fill_s = time.perf_counter() - started
        people = [json.loads(r[0])[0][1] for r in db.execute("SELECT to_json FROM messages WHERE id % 997 = 1")]
        learn_voice(db)  # cached from the first draft on; its own cost is reported apart
        timings: dict[str, list[float]] = {"topic": [], "cold": [], "warm": [], "prompt": []}
        for r in range(repeats):
            for i, instruction in enumerate(INSTRUCTIONS):
                to = people[(r * len(INSTRUCTIONS) + i) % len(people)]
                for label, kw in (("topic", {}), ("cold", {"to": to}), ("warm", {"to": to})):
                    if label == "cold":
                        examples._recipients_cache.clear()  # first draft to this person since the mail changed
                    t0 = time.perf_counter()
                    chosen = examples.select_examples(db, instruction, k=3, budget=1500, **kw)
                    timings[label].append((time.perf_counter() - t0) * 1000)
                    assert chosen, "retrieval found nothing"
                examples._recipients_cache.clear()
                t0 = time.perf_counter()  # the whole prompt step of a first draft to someone
                build_prompt(db, instruction, learn_voice(db), n_ctx=4096, count_tokens=approx, to=to)
                timings["prompt"].append((time.perf_counter() - t0) * 1000)
        from assistant.drafting import voice

        voice._cache.clear()
        t0 = time.perf_counter()
        learn_voice(db)
        row = {"rows": n, "fill_s": fill_s, "voice_ms": (time.perf_counter() - t0) * 1000}
        for label, ms in timings.items():
            ms.sort()
            row[label] = (_median(ms), ms[max(int(len(ms) * 0.95) - 1, 0)])
        out.append(row)
        print(f"  {n:,} rows: {row}", file=sys.stderr)
    return out


def _scan_recipient_mail(db, address: str):
    """The lookup before the recipients index, as it was: one scan of the messages table (the baseline)."""
    from assistant.drafting.examples import PUBLIC_DOMAINS, RecipientMail
    from assistant.drafting.voice import recipients
    from assistant.mail.identity import normalize_address

    address = address.strip().lower()
    domain = address.rpartition("@")[2]
    organisation = bool(domain) and domain not in PUBLIC_DOMAINS
    pattern = f'%@{domain}"%' if organisation else f'%"{address}"%'
    rows = db.execute(
        "SELECT id, date, to_json, cc_json FROM messages NOT INDEXED WHERE sent_by_me = 1 AND automated = 0 "
        "AND is_forward = 0 AND (to_json LIKE ? OR cc_json LIKE ?)",
        [pattern, pattern],
    ).fetchall()
    rows.sort(key=lambda r: r[1] or "", reverse=True)
    exact = f'"{address}"'
    name, person, others = "", [], []
    for row_id, _date, to_json, cc_json in rows:
        if exact in (to_json or "").lower() or exact in (cc_json or "").lower():
            person.append(row_id)
            if not name:
                name = next((n for n, a in recipients(to_json) if a.lower() == address and n), "")
        else:
            others.append(row_id)
    sender = db.execute(
        "SELECT from_name FROM messages WHERE from_key = ? AND from_name != '' ORDER BY date DESC LIMIT 1",
        [normalize_address(address)],
    ).fetchone()
    return RecipientMail(sender[0] if sender else name, person, organisation=lambda: others)


def _pin() -> str:
    """Run on one CPU (the last): both variants then share one core's caches and frequency, and a variant is
    never helped by a second core the other did not get."""
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned"
    cpu = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return f"pinned to CPU {cpu}"


def _spread(ms: list[float]) -> dict:
    ms = sorted(ms)
    quartiles = statistics.quantiles(ms, n=4) if len(ms) > 1 else [ms[0]] * 3
    return {"median": _median(ms), "q1": quartiles[0], "q3": quartiles[2], "min": ms[0], "max": ms[-1], "n": len(ms)}


RECIPIENT_VARIANTS = {
    # name: (the lookup of the user's mail to the person and organisation, ids up to which FTS5 looks up each id)
    "before": ("scan", 10**9),  # the code before the recipients index: a scan, and one FTS5 look-up per id
    "scan": ("scan", None),  # the scan with today's ranking: the lookup's own share
    "index": ("index", None),
}


def bench_recipients(n: int, rounds: int, recipients_per_round: int = 24) -> dict:
    """First draft to a recipient: ``select_examples`` with the recipients index, against the scan it replaced."""
    from assistant.drafting import examples
    from assistant.store import open_store

    pinned, load_before = _pin(), _load_average()
    db = open_store(Path(tempfile.mkdtemp(prefix=f"draft-bench-recipients-{n}-")))
    started = time.perf_counter()
    _fill(db, n)
    fill_s = time.perf_counter() - started
    people = sorted({json.loads(r[0])[0][1] for r in db.execute("SELECT to_json FROM messages")})
    rng = random.Random(7)
    lookups = {"scan": _scan_recipient_mail, "index": examples.recipient_mail}
    seek_ids = examples.SEEK_IDS
    names = list(RECIPIENT_VARIANTS)
    timings: dict[str, dict[str, list[float]]] = {v: {"lookup": [], "examples": [], "cpu": []} for v in names}
    round_medians: dict[str, list[float]] = {v: [] for v in names}
    same = {v: 0 for v in names}

    def run(name: str, instruction: str, to: str) -> tuple[float, float, float, list[int]]:
        """(lookup ms, retrieval ms, retrieval CPU ms, the examples): CPU time, on one pinned CPU and one
        thread, is the work done, whatever else the machine runs; wall time is what the user waits."""
        lookup, seek = RECIPIENT_VARIANTS[name]
        examples.recipient_mail, examples.SEEK_IDS = lookups[lookup], seek or seek_ids
        examples._recipients_cache.clear()  # the first draft to this person
        t0 = time.perf_counter()
        lookups[lookup](db, to).domain  # noqa: B018 - both lists, as the scan makes them
        examples._recipients_cache.clear()  # and again inside select_examples: a whole first draft
        t1, cpu = time.perf_counter(), time.process_time()
        chosen = [e.id for e in examples.select_examples(db, instruction, to=to, k=3, budget=1500)]
        cpu, t2 = time.process_time() - cpu, time.perf_counter()
        return (t1 - t0) * 1000, (t2 - t1) * 1000, cpu * 1000, chosen

    try:
        for r in range(rounds + 1):  # round 0 warms the page cache and the statement caches, and is not counted
            this_round: dict[str, list[float]] = {v: [] for v in names}
            for i, to in enumerate(rng.sample(people, recipients_per_round)):
                instruction = INSTRUCTIONS[i % len(INSTRUCTIONS)]
                turn = (r + i) % len(names)
                chosen = {}
                for name in names[turn:] + names[:turn]:  # each variant first as often as the others
                    lookup_ms, examples_ms, cpu_ms, chosen[name] = run(name, instruction, to)
                    if r:
                        timings[name]["lookup"].append(lookup_ms)
                        timings[name]["examples"].append(examples_ms)
                        timings[name]["cpu"].append(cpu_ms)
                        this_round[name].append(examples_ms)
                for name in names:
                    same[name] += chosen[name] == chosen["index"]
            if r:
                for name in names:
                    round_medians[name].append(_median(this_round[name]))
                print(f"  round {r}: " + ", ".join(f"{v} {round_medians[v][-1]:.1f} ms" for v in names),
                      file=sys.stderr)  # fmt: skip
    finally:
        examples.recipient_mail, examples.SEEK_IDS = lookups["index"], seek_ids
    total = (rounds + 1) * recipients_per_round
    return {
        "rows": n, "fill_s": fill_s, "pinned": pinned, "rounds": rounds, "per_round": recipients_per_round,
        "people": len(people), "same_examples": {v: same[v] / total for v in names}, "round_medians": round_medians,
        "load_before": load_before,
        **{f"{v}_{what}": _spread(ms) for v, parts in timings.items() for what, ms in parts.items()},
    }  # fmt: skip


def _import_rows(n: int) -> list[tuple]:
    """``n`` rows as the importer stores them, built by its own record builder from generated mail."""
    import mailgen as gen

    from assistant import importer

    out, seen = [], set()
    for i, m in enumerate(gen.iter_messages(n * 2, seed=3)):
        r = importer.build_record(m.raw, False, m.folder)
        if isinstance(r, str) or r["message_id"] in seen:
            continue
        seen.add(r["message_id"])
        mine = r["from_key"] == gen.ME_ADDR
        automated = bool(r.get("auto_reason")) and not mine  # near enough the importer's rules, which change
        r.update(sent_by_me=int(mine), automated=int(automated), size=len(m.raw), source_file="bench",
                 source_offset=i, import_run=1)  # fmt: skip
        out.append(tuple(r.get(column, "") for column in importer._COLUMNS))
        if len(out) >= n:
            break
    return out


STORE_VARIANTS = {
    "without": "no recipients index",
    "trigger": "the index kept by a trigger on each insert (before)",
    "bulk": "the index filled in bulk at the end, as the importer does (today)",
    "batches": "the index filled in bulk after each batch",
}


def bench_insert_triggers(n: int, rounds: int) -> dict:
    """µs per stored message without the recipients index, with the insert trigger that kept it before, and
    with the bulk fill that keeps it today (once at the end, as the importer does, or after each batch); rounds
    rotate the order. Every variant with the index must give the same index."""
    from assistant import importer
    from assistant.store import open_store
    from assistant.store.fts import index_pending
    from assistant.store.recipients import index_recipients_pending, insert_trigger_sql

    pinned = _pin()
    rows = _import_rows(n)
    sent = sum(1 for r in rows if r[importer._COLUMNS.index("sent_by_me")]) / len(rows)
    reference: dict[str, list[tuple]] = {}

    def store(variant: str) -> tuple[float, float]:
        """(wall, CPU) µs per message; CPU time is what the load of a shared machine disturbs least."""
        folder = Path(tempfile.mkdtemp(prefix="draft-bench-insert-"))
        db = open_store(folder)
        if variant == "trigger":
            db.execute(insert_trigger_sql())
        elif variant == "without":
            for name in ("au", "ad"):
                db.execute(f"DROP TRIGGER sent_recipients_{name}")
        start, cpu = time.perf_counter(), time.process_time()
        for i in range(0, len(rows), 500):  # the importer's batches, with its full-text indexing after each
            with db.conn:
                db.conn.executemany(importer._INSERT, rows[i : i + 500])
            index_pending(db)
            if variant == "batches":
                index_recipients_pending(db)
        if variant == "bulk":
            index_recipients_pending(db)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        index = db.execute("SELECT * FROM sent_recipients ORDER BY 1, 2, 3").fetchall()
        assert index == ([] if variant == "without" else reference.setdefault("index", index)), f"{variant} differs"
        db.conn.close()
        shutil.rmtree(folder)  # 30 MB a store, one per variant and round
        return seconds / len(rows) * 1e6, cpu / len(rows) * 1e6

    names = list(STORE_VARIANTS)
    for name in names:
        store(name)  # warm-up
    got: dict[str, list[tuple[float, float]]] = {v: [] for v in names}
    for r in range(rounds):
        turn = r % len(names)
        for name in names[turn:] + names[:turn]:
            got[name].append(store(name))
        print(f"  round {r + 1}: " + ", ".join(f"{v} {got[v][-1][1]:.0f}" for v in names) + " µs CPU per message",
              file=sys.stderr)  # fmt: skip
    out: dict = {"rows": len(rows), "indexed": len(reference["index"]), "sent_share": sent, "pinned": pinned,
                 "rounds": rounds}  # fmt: skip
    for i, kind in enumerate(("wall", "cpu")):
        base = [x[i] for x in got["without"]]
        out[kind] = {
            v: {**_spread([x[i] for x in got[v]]),
                "ratio": _spread([x[i] / b for x, b in zip(got[v], base, strict=True)])}
            for v in names
        }  # fmt: skip
    return out


def _cell(s: dict, unit: str = "ms") -> str:
    return f"{s['median']:.1f} {unit} (IQR {s['q1']:.1f}–{s['q3']:.1f}, {s['min']:.1f}–{s['max']:.1f})"


def storing_lines(ins: dict) -> list[str]:
    lines = [
        f"Storing mail (the importer's insert and full-text indexing, 500-row batches; {ins['rows']:,} rows "
        f"built by the importer from generated mail, {ins['sent_share']:.0%} sent by the user, {ins['indexed']:,} "
        f"rows in the recipients index, the same for every variant with it), {ins['rounds']} rounds in a rotated "
        f"order, {ins['pinned']}. Ratios are per round against no index, then the median:",
        "",
        "| per stored message | CPU time | vs no index | wall time | vs no index |",
        "|---|---:|---:|---:|---:|",
    ]
    for v, label in STORE_VARIANTS.items():
        c, w = ins["cpu"][v], ins["wall"][v]
        lines.append(f"| {label} | {_cell(c, 'µs')} | {c['ratio']['median']:.2f}× | {_cell(w, 'µs')} "
                     f"| {w['ratio']['median']:.2f}× |")  # fmt: skip
    return lines


def storing_markdown(ins: dict, command: str) -> str:
    return "\n".join([
        "### What the recipients index costs when mail is stored", "", f"Command: `{command}`  ",
        f"Machine: {_cpu_name()}, {os.cpu_count()} CPUs, Python {platform.python_version()}. Load average (1 min) "
        f"at the end: {_load_average():.1f}.", "", *storing_lines(ins),
    ]) + "\n"  # fmt: skip


def recipients_markdown(res: dict, ins: dict, command: str) -> str:
    cell = _cell

    lines = [
        "### The first draft to a recipient: the recipients index against a scan of all mail",
        "",
        f"Command: `{command}`  ",
        f"Machine: {_cpu_name()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, {res['pinned']}. "
        f"Load average (1 min) at the start: {res['load_before']:.1f}, at the end: {_load_average():.1f}.",
        "",
        f"{res['rows']:,} synthetic sent emails to {res['people']} people over 51 domains (as above). Each round "
        f"drafts to {res['per_round']} recipients picked at random (the 8 instructions in turn), each with every "
        "variant in a rotated order and the cache emptied first (the first draft to that person); "
        f"{res['rounds']} rounds after one warm-up round. *before*: the code before the recipients index (a scan "
        "of the messages table, then FTS5 asked for the user's mail to that person one message at a time); "
        "*scan*: the same scan with today's ranking (one pass over the matches), which isolates the lookup; "
        "*index*: today's code. Median (interquartile range, min–max) over all drafts:",
        "",
        "| | the user's mail to the person and organisation | example retrieval, first draft (goal < 25 ms) "
        "| its CPU time | same examples as *index* |",
        "|---|---:|---:|---:|---:|",
        *(f"| {v} | {cell(res[v + '_lookup'])} | {cell(res[v + '_examples'])} | {cell(res[v + '_cpu'])} "
          f"| {res['same_examples'][v]:.0%} |" for v in RECIPIENT_VARIANTS),
        "",
        "Per-round medians of example retrieval: "
        + "; ".join(f"{v} " + ", ".join(f"{x:.1f}" for x in ms) for v, ms in res["round_medians"].items()) + " ms.",
    ]  # fmt: skip
    if ins:
        lines += ["", *storing_lines(ins)]
    return "\n".join(lines) + "\n"


def _mm(xs: list[float], fmt: str = ".1f") -> str:
    return f"{_median(xs):{fmt}} ({min(xs):{fmt}}–{max(xs):{fmt}})"


def markdown(gen: dict, retrieval: list[dict], command: str) -> str:
    import llama_cpp

    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line]
        cpu = names[0] if names else cpu
    lines = [
        "## Drafting (llama.cpp) and example retrieval",
        "",
        f"Command: `{command}`  ",
        f"Machine: {cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}, llama-cpp-python "
        f"{llama_cpp.__version__}; model {gen['model']}, n_ctx {gen['n_ctx']}, CPU only, the process pinned to CPU "
        f"{', '.join(map(str, gen['cpus']))}: {gen['threads']} thread(s) generating and {gen['threads_batch']} reading "
        f"the prompt on both sides (the drafting path's defaults, given to the bare side too). Load average (1 min) "
        f"at the start of the run: {gen['load_before']:.1f}, at the end: {_load_average():.1f}.",
        "",
        f"Same prompt ({gen['prompt_tokens']} tokens: system, 3 style examples as earlier turns, the instruction), "
        f"same seed, sampling settings and stop strings, up to {gen['max_tokens']} new tokens, KV cache emptied "
        f"before each run; {gen['rounds']} rounds alternating which runs first, after a warm-up; model load "
        "excluded. The bare side is `Llama.create_chat_completion(stream=True)`; the drafting side is the whole "
        "`draft()` call, whose stream also runs its length control"
        + (f" (a logits processor, aim {gen['aim_tokens']} tokens)" if gen["aim_tokens"] else "")
        + ", sign-off cut, stream cleaner and callback. Generation speed is timed the same way on both sides: "
        "chunks (about a token each) after the first, over the time from the first to the last as the caller "
        "receives them. Medians (min–max over the rounds); ratios are taken per round, then the median:",
        "",
        "| | bare llama-cpp-python | drafting path | drafting ÷ bare | goal |",
        "|---|---:|---:|---:|---|",
        f"| generation tokens/s | {_mm(gen['bare_tps_all'])} | {_mm(gen['ours_tps_all'])} "
        f"| {_mm(gen['ratio_all'], '.3f')}× | ≥ 0.95× |",
        f"| CPU time per generated token (this process, during generation) | {gen['bare_cpu_ms']:.2f} ms "
        f"| {gen['ours_cpu_ms']:.2f} ms | {_mm(gen['cpu_ratio_all'], '.3f')}× tokens per CPU-second | |",
        f"| tokens generated | {_mm(gen['bare_tokens_all'], '.0f')} | {_mm(gen['ours_tokens_all'], '.0f')} | | |",
        f"| time in the drafting path's own code between tokens, share of generation time | "
        f"| {_mm([x * 100 for x in gen['consumer_all']], '.2f')} % | | |",
        f"| model load (not in the timings) | {gen['load_bare_s'] * 1000:.0f} ms | {gen['load_ours_s'] * 1000:.0f} ms "
        "| | |",
        f"| time to first token, from the call | {gen['bare_ttft_ms']:.0f} ms | {gen['ours_ttft_ms']:.0f} ms | | |",
        f"| work before the engine starts (model check, voice, examples, budget) | "
        f"| {_mm(gen['before_engine_all'])} ms | | ≤ 50 ms added |",
        f"| time to first *visible* text (the cleaner holds back a possible preamble) | "
        f"| {gen['ours_visible_ms']:.0f} ms | | |",
        "",
        "Tokens/s per round, bare: " + ", ".join(f"{x:.1f}" for x in gen["bare_tps_all"])
        + "; drafting: " + ", ".join(f"{x:.1f}" for x in gen["ours_tps_all"]) + ". Tokens per round, bare: "
        + ", ".join(f"{x:.0f}" for x in gen["bare_tokens_all"]) + "; drafting: "
        + ", ".join(f"{x:.0f}" for x in gen["ours_tokens_all"]) + ".",
    ]  # fmt: skip
    if not retrieval:
        return "\n".join(lines) + "\n"
    lines += [
        "",
        "Example retrieval (`select_examples`: keywords filtered by document frequency, FTS5 BM25, recipient → "
        "domain → topic tiers, k = 3, 1,500-token budget) on synthetic sent emails inserted directly (500 "
        "recipients over 51 domains), 8 instructions × 3 repeats. *First to a recipient* includes the scan for "
        "the user's mail to that person and organisation (cached until new mail arrives: *again* is the next "
        "draft to them). The whole prompt step is `build_prompt` with `--to`, first to that recipient (voice "
        "cached, 4 chars/token estimate).",
        "",
        "| stored sent emails | no recipient | first to a recipient | again to that recipient "
        "| whole prompt step | learning the voice (once) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]  # fmt: skip
    for row in retrieval:
        cells = " | ".join(f"{row[k][0]:.1f} ms (p95 {row[k][1]:.1f})" for k in ("topic", "cold", "warm", "prompt"))
        lines.append(f"| {row['rows']:,} | {cells} | {row['voice_ms']:.0f} ms |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="GGUF to use (default: the embedded SmolLM2-135M)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--sizes", default="10000,100000", help="stored emails for the retrieval benchmark")
    parser.add_argument("--out", help="write the Markdown section here")
    parser.add_argument("--generation", action="store_true", help="only generation against bare llama-cpp-python")
    parser.add_argument("--lora", nargs="?", const="random", metavar="ADAPTER.gguf",
                        help="only compare base, base + unmerged LoRA and merged models (default: a random r=16 "
                        "adapter on every projection)")  # fmt: skip
    parser.add_argument("--threads", type=int, help="--lora: threads, for the prompt too (default: drafting's)")
    parser.add_argument("--recipients", action="store_true",
                        help="only the first draft to a recipient, recipients index against the old scan, and the "
                        "index's cost when storing mail (stored emails: the last of --sizes)")  # fmt: skip
    parser.add_argument(
        "--storing",
        action="store_true",
        help="only the recipients index's cost when storing mail (20,000 of the importer's rows)",
    )
    args = parser.parse_args()
    os.environ.setdefault("MAILVOICE_HOME", tempfile.mkdtemp(prefix="draft-bench-home-"))
    if args.storing:
        text = storing_markdown(bench_insert_triggers(20_000, args.rounds),
                                ("python bench/draft_bench.py " + " ".join(sys.argv[1:])).strip())  # fmt: skip
        print(text)
        if args.out:
            Path(args.out).write_text(text, encoding="utf-8")
        return
    if args.recipients:
        res = bench_recipients(int(args.sizes.split(",")[-1]), args.rounds)
        ins = bench_insert_triggers(20_000, args.rounds)
        text = recipients_markdown(res, ins, ("python bench/draft_bench.py " + " ".join(sys.argv[1:])).strip())
        print(text)
        if args.out:
            Path(args.out).write_text(text, encoding="utf-8")
        return
    if args.lora:
        res = bench_lora(args.model, None if args.lora == "random" else args.lora, args.rounds, threads=args.threads)
        text = lora_markdown(res, ("python bench/draft_bench.py " + " ".join(sys.argv[1:])).strip())
        print(text)
        if args.out:
            Path(args.out).write_text(text, encoding="utf-8")
        return
    print("generation:", file=sys.stderr)
    gen = bench_generation(args.model, args.rounds)
    retrieval = []
    if not args.generation:
        print("retrieval:", file=sys.stderr)
        retrieval = bench_retrieval([int(s) for s in args.sizes.split(",") if s])
    command = "python bench/draft_bench.py " + " ".join(sys.argv[1:])
    text = markdown(gen, retrieval, command.strip())
    print(text)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
