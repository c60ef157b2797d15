"""Training on the CPU with gradient checkpointing and without: speed, peak memory and the losses, in one run.

Usage (from the repository root, inside .venv):
    taskset -c 0 python bench/checkpointing_bench.py --rounds 3     # the CPU recipe's batch and length
    taskset -c 0 python bench/checkpointing_bench.py --data RUN/data.jsonl   # a training run's own prompts

Both sides run the recipe (trainer.recipe.LoRARecipe) on the embedded model's 4-bit base with the CPU recipe's
micro-batch (2) and sequence length (1,024 tokens), on the same examples in the same order: work emails long
enough to fill most of a sequence, as a prompt showing three of the user's emails does; or, with ``--data``, the
first training examples of a run's ``data.jsonl``, as `train` wrote their prompts. Each side runs in a fresh
process, alternating which goes first; the first step (warm-up) is left out. Peak memory is the process's
maximum resident set, next to what preflight estimates for each side. The losses of the two sides are compared
step by step: checkpointing only recomputes what it did not keep, so they should agree.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from train_bench import base_for, bench_config, examples, peak_memory, run_side, step_times  # noqa: E402

SIDES = {"with": True, "without": False}  # side name -> gradient_checkpointing


def config(args: argparse.Namespace, checkpointing: bool):
    return bench_config(args, "cpu", gradient_checkpointing=checkpointing)


def training_set(args: argparse.Namespace) -> list:
    """The examples both sides train on: enough for ``--steps`` batches."""
    from trainer.data import from_rows, load_examples

    n = args.steps * args.batch
    if args.data:
        return [e for e in load_examples(args.data) if e.split == "train"][:n]
    return from_rows(examples(n, sentences=(args.sentences, args.sentences * 2)))


def run_recipe(args: argparse.Namespace, cfg, prefix: str) -> dict:
    """Train ``cfg`` on :func:`training_set` in this process: speed (first step left out), peak memory, losses."""
    import torch

    from trainer.recipe import LoRARecipe

    torch.set_num_threads(args.threads)
    cache = Path(args.cache)
    run = Path(tempfile.mkdtemp(prefix=prefix, dir=cache))
    events: list[dict] = []
    r = LoRARecipe(cfg, run, cache, callback=events.append)
    r.setup(training_set(args))
    cpu0 = time.process_time()
    r.train()
    cpu = time.process_time() - cpu0
    times, tokens = step_times(events)
    shutil.rmtree(run, ignore_errors=True)
    return {
        "tokens_per_second": sum(tokens[1:]) / sum(times[1:]),
        "tokens_per_cpu_second": sum(tokens) / cpu,
        "tokens_per_step": statistics.mean(tokens),
        "peak_bytes": peak_memory("cpu"),
        "losses": [e["loss"] for e in events if e["event"] == "step"],
    }


def child(args: argparse.Namespace) -> dict:
    """One side, in this (fresh) process."""
    return {"side": args.child, **run_recipe(args, config(args, SIDES[args.child]), "ckpt-bench-")}


def training_arguments(p: argparse.ArgumentParser) -> None:
    """The options every side-by-side training benchmark here takes."""
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--seq", type=int, default=1024)
    p.add_argument("--sentences", type=int, default=25, help="an email has this many sentences to twice as many")
    p.add_argument("--data", type=Path, help="a run's data.jsonl: train on its first examples, as written")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--shape", default="embedded", help=argparse.SUPPRESS)
    p.add_argument("--cache", default=str(REPO / "bench" / "out" / "train-cache"))


def estimates(args: argparse.Namespace) -> dict[str, float]:
    from trainer.preflight import estimate_memory
    from trainer.shapes import shape_of

    shape = shape_of(base_for(args, Path(args.cache)))
    return {side: estimate_memory(shape, config(args, on), "cpu").total for side, on in SIDES.items()}


def spread(values: list[float], fmt: str) -> str:
    return f"{format(statistics.median(values), fmt)} ({format(min(values), fmt)}–{format(max(values), fmt)})"


def markdown(args: argparse.Namespace, rounds: list[dict], est: dict[str, float], load: tuple) -> str:
    import platform

    import torch

    def of(side: str, key: str) -> list[float]:
        return [r[key] for r in rounds if r["side"] == side]

    pairs = list(zip(of("without", "tokens_per_second"), of("with", "tokens_per_second"), strict=True))
    ratios = [a / b for a, b in pairs]
    cpu_ratios = [
        a / b for a, b in zip(of("without", "tokens_per_cpu_second"), of("with", "tokens_per_cpu_second"), strict=True)
    ]
    gap = max(
        abs(a - b)
        for x, y in zip(of("with", "losses"), of("without", "losses"), strict=True)
        for a, b in zip(x, y, strict=True)
    )
    mib = 2**20
    what = f"the first training examples of {args.data}" if args.data else "generated work emails"
    return "\n".join(
        [
            "## Training on the CPU without gradient checkpointing",
            "",
            f"Command: `{' '.join(['python', 'bench/checkpointing_bench.py', *sys.argv[1:]])}`  ",
            f"Machine: {platform.processor() or 'CPU'}, {len(os.sched_getaffinity(0))} CPU(s), {args.threads} torch "
            f"thread(s); torch {torch.__version__}, Python {platform.python_version()}. Load average at the start: "
            f"{load[0]:.1f}, at the end: {load[1]:.1f}.",
            "",
            f"The recipe on the embedded model's 4-bit base, on {what}, batch {args.batch}, up to {args.seq} tokens "
            f"({statistics.mean(of('with', 'tokens_per_step')):.0f} tokens a step on average), {args.steps} steps "
            f"(the first left out), the same batches in the same order; {len(pairs)} rounds, each side a fresh "
            "process, alternating which runs first. Median (min–max); the ratio is taken in each round.",
            "",
            "| | with checkpointing | without | without / with |",
            "|---|---:|---:|---:|",
            f"| training tokens/s (wall) | {spread(of('with', 'tokens_per_second'), '.1f')} | "
            f"{spread(of('without', 'tokens_per_second'), '.1f')} | {spread(ratios, '.2f')}× |",
            f"| tokens per CPU-second | {spread(of('with', 'tokens_per_cpu_second'), '.1f')} | "
            f"{spread(of('without', 'tokens_per_cpu_second'), '.1f')} | {spread(cpu_ratios, '.2f')}× |",
            f"| peak memory (MiB) | {spread([b / mib for b in of('with', 'peak_bytes')], ',.0f')} | "
            f"{spread([b / mib for b in of('without', 'peak_bytes')], ',.0f')} | |",
            f"| preflight's estimate (MiB) | {est['with'] / mib:,.0f} | {est['without'] / mib:,.0f} | |",
            "",
            "Tokens/s per round: " + "; ".join(f"{r['side']} {r['tokens_per_second']:.1f}" for r in rounds) + ".",
            f"Largest difference between the two sides' losses at the same step: {gap:.2g}.",
            "",
        ]
    )


def parse_or_run_child(p: argparse.ArgumentParser, child) -> argparse.Namespace | None:
    """The parsed options; in a side's process (``--child``), run ``child`` and print its JSON line instead."""
    args = p.parse_args()
    Path(args.cache).mkdir(parents=True, exist_ok=True)
    if not args.child:
        return args
    print(json.dumps(child(args)))
    return None


def alternate(args: argparse.Namespace, sides: tuple[str, ...], script: str, env=lambda side: None) -> list[dict]:
    """``--rounds`` rounds of every side, each in a fresh process (``env(side)``: its environment, None for this
    one's), alternating which runs first."""
    rounds = []
    for n in range(args.rounds):
        for side in sides if n % 2 == 0 else sides[::-1]:
            rounds.append(run_side(side, sys.argv[1:], script, env(side)))
            done = rounds[-1]
            mib = done["peak_bytes"] / 2**20
            print(f"round {n + 1}: {side} {done['tokens_per_second']:.1f} tokens/s, {mib:,.0f} MiB", file=sys.stderr)
    return rounds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    training_arguments(p)
    p.add_argument("--child", choices=list(SIDES), help=argparse.SUPPRESS)
    args = parse_or_run_child(p, child)
    if args is None:
        return
    load_start = os.getloadavg()[0]
    rounds = alternate(args, tuple(SIDES), __file__)
    print(markdown(args, rounds, estimates(args), (load_start, os.getloadavg()[0])))


if __name__ == "__main__":
    main()
