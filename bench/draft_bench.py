"""Drafting speed against bare llama-cpp-python on the same model and prompt, and example retrieval at scale.

Usage (from the repository root, inside .venv):
    python bench/draft_bench.py                              # embedded SmolLM2-135M, 5 rounds, 10k + 100k rows
    python bench/draft_bench.py --model PATH.gguf --rounds 7
    python bench/draft_bench.py --out BENCHMARKS-drafting.md # also write the results as a Markdown section

Generation: each round runs the bare ``Llama.create_chat_completion(stream=True)`` and the full drafting path
(``assistant.drafting.draft``: model check, voice, example retrieval, prompt budget, streaming cleaner,
saving) on the same prompt, seed and sampling settings, alternating which goes first. Both engines are
loaded and warmed up before timing (load time is reported apart), and each run starts from an empty KV
cache (``reset()``) so both pay for reading the whole prompt. Reported: medians over the rounds of time to
first token (from the call) and generation tokens/s (tokens after the first / time after the first).

Retrieval: N synthetic sent emails are inserted straight into a fresh store, then ``select_examples`` (FTS5
BM25, recipient and domain tiers, budget fitting) is timed for varied instructions, with and without a
recipient.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
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


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def _mailbox_store(root: Path):
    from assistant.importer import import_paths
    from assistant.mail import generate as gen
    from assistant.store import open_store

    mbox = root / "Sent.mbox"
    gen.write_mbox(mbox, gen.generate_messages(600, seed=5))
    db = open_store(root / "home")
    import_paths(db, [mbox], me=["alex.morgan@example.org"])
    return db


def bench_generation(model: str | None, rounds: int) -> dict:
    from llama_cpp import Llama

    from assistant.drafting import LlamaBackend, draft, engine_settings
    from assistant.drafting.backend import llama_kwargs
    from assistant.drafting.drafts import STOP
    from assistant.drafting.prompting import build_prompt
    from assistant.drafting.voice import learn_voice

    tmp = Path(tempfile.mkdtemp(prefix="draft-bench-"))
    db = _mailbox_store(tmp)
    settings, _ = engine_settings(db, model, "none")
    backend = LlamaBackend(settings)
    load_ours = backend.load()
    started = time.perf_counter()
    kwargs = llama_kwargs(settings)  # the very same engine settings as the drafting path
    bare = Llama(settings.model_path, **kwargs)
    load_bare = time.perf_counter() - started

    instruction, to = INSTRUCTIONS[0], "rosa@properties.example.net"
    prompt = build_prompt(
        db, instruction, learn_voice(db), n_ctx=backend.n_ctx, count_tokens=backend.count_tokens, to=to
    )
    prompt_tokens = sum(backend.count_tokens(m["content"]) for m in prompt.messages)

    def run_bare(seed: int) -> tuple[float, float, int]:
        bare.reset()
        t0 = time.perf_counter()
        first = None
        parts = []
        for chunk in bare.create_chat_completion(
            prompt.messages,
            stream=True,
            max_tokens=prompt.max_tokens,
            temperature=0.7,
            top_p=0.9,
            top_k=40,
            min_p=0.05,
            repeat_penalty=1.1,
            seed=seed,
            stop=list(STOP),
        ):
            text = chunk["choices"][0]["delta"].get("content")
            if text:
                first = first or time.perf_counter()
                parts.append(text)
        end = time.perf_counter()
        tokens = backend.count_tokens("".join(parts))
        return first - t0, (tokens - 1) / (end - first), tokens

    def run_ours(seed: int) -> tuple[float, float, int, float]:
        backend.llama.reset()
        shown: list[float] = []
        t0 = time.perf_counter()
        result = draft(
            db,
            instruction,
            to=to,
            seed=seed,
            backend=backend,
            on_chunk=lambda _i, _t: shown or shown.append(time.perf_counter()),
        )
        return result.first_token_seconds, result.tokens_per_second, result.tokens, shown[0] - t0

    run_bare(0), run_ours(0)  # warm-up: page the weights in, compile the chat template, fill caches
    bare_rows, our_rows = [], []
    for r in range(rounds):
        seed = 100 + r
        if r % 2:
            our_rows.append(run_ours(seed))
            bare_rows.append(run_bare(seed))
        else:
            bare_rows.append(run_bare(seed))
            our_rows.append(run_ours(seed))
        print(
            f"  round {r + 1}: bare {bare_rows[-1][1]:.1f} tok/s ttft {bare_rows[-1][0] * 1000:.0f} ms | "
            f"drafting {our_rows[-1][1]:.1f} tok/s ttft {our_rows[-1][0] * 1000:.0f} ms",
            file=sys.stderr,
        )
    return {
        "model": Path(settings.model_path).name,
        "n_ctx": settings.n_ctx,
        "threads": kwargs["n_threads"],
        "prompt_tokens": prompt_tokens,
        "max_tokens": prompt.max_tokens,
        "rounds": rounds,
        "load_ours_s": load_ours,
        "load_bare_s": load_bare,
        "bare_ttft_ms": _median([b[0] for b in bare_rows]) * 1000,
        "ours_ttft_ms": _median([o[0] for o in our_rows]) * 1000,
        "ours_visible_ms": _median([o[3] for o in our_rows]) * 1000,
        "added_ms": _median([o[0] - b[0] for o, b in zip(our_rows, bare_rows, strict=True)]) * 1000,
        "bare_tps": _median([b[1] for b in bare_rows]),
        "ours_tps": _median([o[1] for o in our_rows]),
        "ratio_per_round": [o[1] / b[1] for o, b in zip(our_rows, bare_rows, strict=True)],
        "bare_tokens": _median([b[2] for b in bare_rows]),
        "ours_tokens": _median([o[2] for o in our_rows]),
    }


def _fill(db, n: int, seed: int = 1) -> None:
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


def bench_retrieval(sizes: list[int], repeats: int = 3) -> list[dict]:
    from assistant.drafting.examples import select_examples
    from assistant.store import open_store

    out = []
    for n in sizes:
        db = open_store(Path(tempfile.mkdtemp(prefix=f"draft-bench-{n}-")))
        started = time.perf_counter()
        _fill(db, n)
        fill_s = time.perf_counter() - started
        timings = {"no recipient": [], "with recipient": []}
        for _ in range(repeats):
            for i, instruction in enumerate(INSTRUCTIONS):
                for label, to in (("no recipient", None), ("with recipient", f"p{i * 7}@org{i}.example")):
                    t0 = time.perf_counter()
                    chosen = select_examples(db, instruction, to=to, k=3, budget=1500)
                    timings[label].append((time.perf_counter() - t0) * 1000)
                    assert chosen, "retrieval found nothing"
        row = {"rows": n, "fill_s": fill_s}
        for label, ms in timings.items():
            ms.sort()
            row[label] = (_median(ms), ms[int(len(ms) * 0.95) - 1])
        out.append(row)
        print(f"  {n:,} rows: {row}", file=sys.stderr)
    return out


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
        f"{llama_cpp.__version__}; model {gen['model']}, n_ctx {gen['n_ctx']}, {gen['threads']} threads, CPU only.",
        "",
        f"Same prompt ({gen['prompt_tokens']} tokens: system, 3 style examples as earlier turns, the instruction), "
        f"same seed and sampling, up to {gen['max_tokens']} new tokens, KV cache emptied before each run; medians "
        f"of {gen['rounds']} alternating rounds after a warm-up.",
        "",
        "| | bare llama-cpp-python | drafting path | goal |",
        "|---|---:|---:|---|",
        f"| model load (excluded below) | {gen['load_bare_s'] * 1000:.0f} ms | {gen['load_ours_s'] * 1000:.0f} ms | |",
        f"| time to first token | {gen['bare_ttft_ms']:.0f} ms | {gen['ours_ttft_ms']:.0f} ms | |",
        f"| added before the first token (median of per-round differences) | | {gen['added_ms']:+.0f} ms | ≤ 50 ms |",
        "| time to first *visible* text (the cleaner holds back a possible preamble) | | "
        f"{gen['ours_visible_ms']:.0f} ms | |",
        f"| generation tokens/s | {gen['bare_tps']:.1f} | {gen['ours_tps']:.1f} "
        f"({gen['ours_tps'] / gen['bare_tps']:.2f}×) | ≥ 0.95× |",
        f"| tokens generated (median) | {gen['bare_tokens']:.0f} | {gen['ours_tokens']:.0f} | |",
        "",
        "Per-round tokens/s ratio (drafting / bare): " + ", ".join(f"{r:.2f}" for r in gen["ratio_per_round"]) + ".",
        "",
        "Example retrieval (`select_examples`: FTS5 BM25 over the instruction's keywords, recipient → domain → "
        "topic tiers, k = 3, 1,500-token budget), synthetic sent emails inserted directly:",
        "",
        "| stored sent emails | no recipient: median / p95 | with `--to`: median / p95 |",
        "|---:|---:|---:|",
    ]
    for row in retrieval:
        a, b = row["no recipient"], row["with recipient"]
        lines.append(f"| {row['rows']:,} | {a[0]:.1f} / {a[1]:.1f} ms | {b[0]:.1f} / {b[1]:.1f} ms |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="GGUF to use (default: the embedded SmolLM2-135M)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sizes", default="10000,100000", help="stored emails for the retrieval benchmark")
    parser.add_argument("--out", help="write the Markdown section here")
    args = parser.parse_args()
    os.environ.setdefault("MAILVOICE_HOME", tempfile.mkdtemp(prefix="draft-bench-home-"))
    print("generation:", file=sys.stderr)
    gen = bench_generation(args.model, args.rounds)
    print("retrieval:", file=sys.stderr)
    retrieval = bench_retrieval([int(s) for s in args.sizes.split(",") if s])
    command = "python bench/draft_bench.py " + " ".join(sys.argv[1:])
    text = markdown(gen, retrieval, command.strip())
    print(text)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
