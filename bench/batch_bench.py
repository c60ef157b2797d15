"""Drafts per minute through ``mailvoice batch``, one at a time and several at once on the parallel engine.

Usage (from the repository root, inside .venv; pin to one core so that other work cannot take turns with it):
    OMP_NUM_THREADS=1 taskset -c 1 python bench/batch_bench.py                   # embedded model, 8 drafts
    OMP_NUM_THREADS=1 taskset -c 1 python bench/batch_bench.py --drafts 8 --rounds 3 --widths 1 2 4 8 --out s.md

A generated mailbox is imported into a temporary store (its sent mail gives the voice and the style examples).
Each round runs :func:`assistant.drafting.batch` on the same instructions file with the same seed at every
width, in alternating order (reversed every other round), on the same loaded model: width 1 is
:func:`assistant.drafting.draft` one instruction after another (llama-cpp-python's own KV cache kept between
drafts, so the shared system text is read once), wider runs the parallel engine
(:mod:`assistant.drafting.parallel`), which reads the shared prefix once into its own context. Every run
starts from an empty cache. Reported: drafts per minute (median and range over rounds), the median of each
round's ratio to width 1, this process's CPU seconds per draft and the same ratio in CPU time (the fairer one
when other work shares the core: it does not count the turns other processes take), tokens generated per draft
(retries included), and how many drafts came out the same as at width 1 (batched sums can tip a near-tie
between tokens).
Evaluation drafts through the same code (:func:`assistant.drafting.drafts.draft_many`).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(1, str(REPO / "tests"))  # mailgen: the test suite's mailbox generator

from pairs_bench import _store  # noqa: E402 - the same generated mailbox and store as the labelling benchmark

INSTRUCTIONS = [
    "ask Rosa if the plumber can come on Monday morning to fix the kitchen faucet",
    "tell Kenji the onboarding revamp slips a week because of hiring",
    "thank Grace for the workshop notes and propose a follow-up on Thursday",
    "remind the team that the Q3 budget draft is due Friday",
    "ask Priya whether the vendor signed the contract, and if not what is missing",
    "tell Marco I can't make the offsite and suggest a call instead",
    "congratulate Lena on the launch and ask for the post-mortem date",
    "ask Sam to send the invoice for March again, the first one had the wrong address",
    "tell Ana the API already has a helper for this and point her to the docs",
    "decline the conference invitation politely and recommend Omar instead",
    "ask the landlord when the heating will be repaired",
    "tell Jo the draft looks good, two small comments on the summary",
    "ask Ben to move Friday's review to Monday",
    "tell the client the delivery is on track for the 15th",
    "ask Kim for the slides from yesterday's meeting",
    "invite the team to lunch on Wednesday to celebrate the release",
]


def _run(db, backend, todo: Path, out: Path, width: int, seed: int) -> dict:
    from assistant.drafting import batch

    with db.conn:
        db.execute("DELETE FROM drafts")
    backend.llama.reset()  # an empty cache at the start, as the engine's new context has
    cpu, started = time.process_time(), time.perf_counter()
    report = batch(db, todo, out, backend=backend, width=width, seed=seed, length="short")
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    rows = db.execute("SELECT instruction, text, tokens FROM drafts").fetchall()
    return {"seconds": seconds, "cpu": cpu, "drafts": report.written, "width": report.width,
            "texts": {r[0]: r[1] for r in rows}, "tokens": sum(r[2] for r in rows)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="GGUF (default: the embedded SmolLM2-135M)")
    ap.add_argument("--drafts", type=int, default=8, help=f"instructions to draft (at most {len(INSTRUCTIONS)})")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--widths", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--messages", type=int, default=300, help="size of the generated mailbox")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", default=None, help="write the results as Markdown to this file")
    args = ap.parse_args()
    widths = sorted(set(args.widths) | {1})

    from assistant.drafting.backend import EngineSettings, LlamaBackend
    from assistant.drafting.models import embedded_model_path

    model = args.model or str(embedded_model_path())
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        db = _store(root, args.messages)
        todo = root / "todo.txt"
        todo.write_text("\n".join(INSTRUCTIONS[: args.drafts]) + "\n", encoding="utf-8")
        backend = LlamaBackend(EngineSettings(model_path=model, n_ctx=2048))
        backend.load()
        _run(db, backend, todo, root / "warm.csv", 1, args.seed)  # warm-up: page the weights in
        runs: dict[int, list[dict]] = {w: [] for w in widths}
        for r in range(args.rounds):
            order = widths if r % 2 == 0 else list(reversed(widths))
            for w in order:
                got = _run(db, backend, todo, root / f"w{w}.csv", w, args.seed)
                runs[w].append(got)
                print(f"round {r + 1} width {w}: {got['drafts']} drafts in {got['seconds']:.1f} s "
                      f"(engine width {got['width']})", file=sys.stderr)  # fmt: skip
    load_after = os.getloadavg()[0]

    lines = [
        "| width | drafts/min | vs width 1 | CPU s per draft | vs width 1, CPU | generated tokens per draft "
        "| same drafts as width 1 |",
        "|---|---|---|---|---|---|---|",
    ]
    for w in widths:
        rates = [60 * x["drafts"] / x["seconds"] for x in runs[w]]
        ratios = [x1["seconds"] / x["seconds"] for x, x1 in zip(runs[w], runs[1], strict=True)]
        cpu_ratios = [x1["cpu"] / x["cpu"] for x, x1 in zip(runs[w], runs[1], strict=True)]
        last, last1 = runs[w][-1], runs[1][-1]
        same = sum(last["texts"].get(k) == v for k, v in last1["texts"].items())
        tokens = statistics.mean(x["tokens"] / x["drafts"] for x in runs[w])
        cpu = statistics.median(x["cpu"] / x["drafts"] for x in runs[w])
        rate = f"{statistics.median(rates):.1f} ({min(rates):.1f}–{max(rates):.1f})"
        same_text = f"{same}/{len(last1['texts'])}"
        lines.append(f"| {w} | {rate} | {statistics.median(ratios):.2f}× | {cpu:.2f} | "
                     f"{statistics.median(cpu_ratios):.2f}× | {tokens:.1f} | {same_text} |")  # fmt: skip
    head = (
        f"Command: `{' '.join(['python', *sys.argv])}` (model {Path(model).name}; {args.drafts} instructions, "
        f"`--length short`, seed {args.seed}; {args.rounds} rounds, alternating order; median (min–max)). "
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, this process on {len(os.sched_getaffinity(0))}, "
        f"Python {platform.python_version()}, load average {load_before:.1f} before and {load_after:.1f} after."
    )
    text = head + "\n\n" + "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
