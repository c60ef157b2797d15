"""The training worker's memory allocator setting against glibc's default: peak memory, speed and the losses.

Usage (from the repository root, inside .venv):
    taskset -c 0 python bench/allocator_bench.py --rounds 3                    # the CPU recipe
    taskset -c 0 python bench/allocator_bench.py --rounds 3 --checkpointing    # with gradient checkpointing
    taskset -c 0 python bench/allocator_bench.py --data RUN/data.jsonl         # a training run's own prompts

Both sides run the recipe (trainer.recipe.LoRARecipe) on the embedded model's 4-bit base with the CPU recipe's
micro-batch (2), sequence length (1,024 tokens) and LoRA dropout, on the same examples in the same order: work
emails long enough to fill most of a sequence, or, with ``--data``, the first training examples of a run's
``data.jsonl``. One side runs with the environment a training worker with gradient checkpointing gets
(trainer.process.ALLOCATOR_ENV), the other with glibc's default; everything else is the same. Each side runs in
a fresh process, alternating which goes first; the first step (warm-up) is left out of the speed. Peak memory is
the process's maximum resident set. The losses are compared step by step: the allocator must not change what is
computed.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from checkpointing_bench import alternate, parse_or_run_child, run_recipe, spread, training_arguments  # noqa: E402
from train_bench import bench_config  # noqa: E402

from trainer.process import ALLOCATOR_ENV  # noqa: E402

SIDES = ("default", "worker")


def side_env(side: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ALLOCATOR_ENV}
    return {**env, **ALLOCATOR_ENV} if side == "worker" else env


def config(args: argparse.Namespace):
    return bench_config(args, "cpu", gradient_checkpointing=args.checkpointing, lora_dropout=args.dropout)


def child(args: argparse.Namespace) -> dict:
    """One side, in this (fresh) process (its allocator is set by the environment it was started with)."""
    return {"side": args.child, **run_recipe(args, config(args), "alloc-bench-")}


def markdown(args: argparse.Namespace, rounds: list[dict], estimate: float, load: tuple) -> str:
    import torch

    def of(side: str, key: str) -> list[float]:
        return [r[key] for r in rounds if r["side"] == side]

    mib = 2**20

    def line(r: dict) -> str:
        return f"{r['side']} {r['tokens_per_second']:.1f} tokens/s, {r['peak_bytes'] / mib:,.0f} MiB"

    speed = [a / b for a, b in zip(of("worker", "tokens_per_second"), of("default", "tokens_per_second"), strict=True)]
    memory = [a / b for a, b in zip(of("worker", "peak_bytes"), of("default", "peak_bytes"), strict=True)]
    gap = max(
        abs(a - b)
        for x, y in zip(of("default", "losses"), of("worker", "losses"), strict=True)
        for a, b in zip(x, y, strict=True)
    )
    what = f"the first training examples of {args.data}" if args.data else "generated work emails"
    checkpointing = "with" if args.checkpointing else "without"
    setting = " ".join(f"{k}={v}" for k, v in ALLOCATOR_ENV.items())
    return "\n".join(
        [
            f"## The training worker's memory allocator ({checkpointing} gradient checkpointing)",
            "",
            f"Command: `{' '.join(['python', 'bench/allocator_bench.py', *sys.argv[1:]])}`  ",
            f"Machine: {platform.processor() or 'CPU'}, {len(os.sched_getaffinity(0))} CPU(s), {args.threads} torch "
            f"thread(s); torch {torch.__version__}, Python {platform.python_version()}, "
            f"{platform.libc_ver()[0]} {platform.libc_ver()[1]}. Load average at the start: {load[0]:.1f}, at the "
            f"end: {load[1]:.1f}.",
            "",
            f"The recipe on the embedded model's 4-bit base, {checkpointing} gradient checkpointing, LoRA dropout "
            f"{args.dropout}, on {what}, batch {args.batch}, up to {args.seq} tokens "
            f"({statistics.mean(of('default', 'tokens_per_step')):.0f} tokens a step on average), {args.steps} steps "
            f"(the first left out of the speed), the same batches in the same order; {len(speed)} rounds, each side "
            f"a fresh process, alternating which runs first. The worker's side runs with `{setting}`, as "
            "`trainer.process` starts a worker with gradient checkpointing. Median (min–max); the ratios are taken "
            "in each round.",
            "",
            "| | glibc's default | the worker's setting | worker / default |",
            "|---|---:|---:|---:|",
            f"| peak memory (MiB) | {spread([b / mib for b in of('default', 'peak_bytes')], ',.0f')} | "
            f"{spread([b / mib for b in of('worker', 'peak_bytes')], ',.0f')} | {spread(memory, '.2f')}× |",
            f"| training tokens/s (wall) | {spread(of('default', 'tokens_per_second'), '.1f')} | "
            f"{spread(of('worker', 'tokens_per_second'), '.1f')} | {spread(speed, '.2f')}× |",
            f"| preflight's estimate (MiB) | {estimate / mib:,.0f} | | |",
            "",
            "Per round: " + "; ".join(line(r) for r in rounds) + ".",
            f"Largest difference between the two sides' losses at the same step: {gap:.2g}.",
            "",
        ]
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    training_arguments(p)
    p.add_argument("--checkpointing", action="store_true", help="train with gradient checkpointing")
    p.add_argument("--dropout", type=float, default=0.05, help="LoRA dropout (the default setting's)")
    p.add_argument("--child", choices=SIDES, help=argparse.SUPPRESS)
    args = parse_or_run_child(p, child)
    if args is None:
        return
    from trainer.preflight import estimate_memory
    from trainer.shapes import shape_of

    load_start = os.getloadavg()[0]
    rounds = alternate(args, SIDES, __file__, side_env)
    estimate = estimate_memory(shape_of(config(args).base), config(args), "cpu").total
    print(markdown(args, rounds, estimate, (load_start, os.getloadavg()[0])))


if __name__ == "__main__":
    main()
