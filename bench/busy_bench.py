"""Drafting while a training run holds the CPU: the training process at normal priority against the lowered one.

Usage (from the repository root, inside .venv):
    python bench/busy_bench.py                       # every CPU this process may use, 5 rounds
    taskset -c 0 python bench/busy_bench.py --rounds 7   # a one-CPU machine

On a CPU-only machine training takes every core for hours, and the person drafts meanwhile. Each round drafts
the same request with the embedded model (llama.cpp with the drafting path's engine settings: every CPU this
process may use; an empty KV cache, so the whole prompt is read each time; greedy, 96 tokens) in three
conditions, in a rotated order:
- alone;
- beside a stand-in for training at normal priority;
- beside the same stand-in at the priority the training process takes (``trainer.worker.lower_priority``).
The stand-in is what training does to a CPU: a child process running forward and backward passes of a small
torch network on every CPU this process may use (``torch.set_num_threads``), as the recipe does. It is
started before each timed draft and has warmed up when the draft starts; it counts the training steps it
makes, so the cost to training of giving way is reported too.

Reported: median (min-max) seconds per draft and the per-round ratio to drafting alone; the stand-in's steps per
second while the draft was written, and the ratio lowered / normal; and its steps per second in the 2 s
before the draft, with nothing else running (its start and first three steps are left out).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PROMPT = (
    "<|im_start|>system\nYou write emails for Dana in her voice.<|im_end|>\n<|im_start|>user\n"
    "Write an email: tell Kenji the onboarding revamp slips a week because of hiring, and propose Thursday "
    "for the review instead.<|im_end|>\n<|im_start|>assistant\n"
)
TOKENS = 96
LABELS = ("alone", "beside training at normal priority", "beside training at lowered priority")


def load(lower: bool) -> None:
    """The training stand-in (``--load``): train a small network until stdin closes, then print the steps made
    and the seconds since the line ``go`` came on stdin."""
    import threading

    import torch

    from assistant.drafting.backend import usable_cpus
    from trainer.worker import lower_priority

    if lower:
        lower_priority()
    torch.set_num_threads(usable_cpus())
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(1024, 2048), torch.nn.GELU(), torch.nn.Linear(2048, 1024))
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-4)
    batch = torch.randn(64, 1024)
    steps, mark, done = 0, [0, 0.0], threading.Event()

    def listen() -> None:
        for line in sys.stdin:
            if line == "go\n":
                mark[:] = [steps, time.perf_counter()]
        done.set()

    def step() -> None:
        net(batch).pow(2).mean().backward()
        optimizer.step()
        optimizer.zero_grad()

    for _ in range(3):
        step()  # the first steps allocate: not counted
    threading.Thread(target=listen, daemon=True).start()
    print("ready", flush=True)
    started = time.perf_counter()
    while not done.is_set():
        step()
        steps += 1
    alone = mark[0] / (mark[1] - started)  # the warm-up, before the draft began: nothing else ran
    print(f"{steps - mark[0]} {time.perf_counter() - mark[1]:.6f} {alone:.6f}", flush=True)


def _load_process(lower: bool) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--load"] + (["--lower"] if lower else []),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    time.sleep(2.0)  # threads spun up, caches warm: a training run that has been going for a while
    return proc


def _draft(llm) -> float:
    llm.reset()
    started = time.perf_counter()
    out = llm.create_completion(PROMPT, max_tokens=TOKENS, temperature=0.0, seed=1)
    seconds = time.perf_counter() - started
    assert out["usage"]["completion_tokens"] > 0
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--lower", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        load(args.lower)
        return

    from llama_cpp import Llama

    from assistant.drafting.backend import EngineSettings, llama_kwargs, usable_cpus
    from assistant.drafting.models import embedded_model_path

    model = embedded_model_path()
    assert model is not None, "the embedded model is not installed"
    llm = Llama(str(model), **llama_kwargs(EngineSettings(str(model), n_ctx=1024)))
    _draft(llm)  # warm-up
    arms = ("alone", "normal", "lowered")
    seconds: dict[str, list[float]] = {arm: [] for arm in arms}
    steps: dict[str, list[float]] = {arm: [] for arm in arms[1:]}
    warm: dict[str, list[float]] = {arm: [] for arm in arms[1:]}
    for round_ in range(args.rounds):
        for arm in arms[round_ % 3 :] + arms[: round_ % 3]:
            if arm == "alone":
                seconds[arm].append(_draft(llm))
                continue
            proc = _load_process(lower=arm == "lowered")
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
            seconds[arm].append(_draft(llm))
            proc.stdin.close()
            made, took, alone = proc.stdout.readline().split()
            proc.wait()
            steps[arm].append(int(made) / float(took))
            warm[arm].append(float(alone))
        print(f"round {round_ + 1}: " + ", ".join(f"{a} {seconds[a][-1]:.2f} s" for a in arms), file=sys.stderr)

    def spread(values: list[float], fmt: str) -> str:
        return f"{format(statistics.median(values), fmt)} ({format(min(values), fmt)}–{format(max(values), fmt)})"

    print(
        f"Machine: {platform.machine()}, {usable_cpus()} CPUs for this process, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.1f}; {args.rounds} rounds, {TOKENS} tokens a draft, {model.name}"
    )
    print()
    print("| drafting | seconds a draft | ÷ alone (per round) | training stand-in, steps/s while drafting |")
    print("|---|---:|---:|---:|")
    for arm, label in zip(arms, LABELS, strict=True):
        ratio = [s / a for s, a in zip(seconds[arm], seconds["alone"], strict=True)]
        rate = spread(steps[arm], ".1f") if arm in steps else ""
        print(f"| {label} | {spread(seconds[arm], '.2f')} | {spread(ratio, '.2f')}× | {rate} |")
    kept = [lo / no for lo, no in zip(steps["lowered"], steps["normal"], strict=True)]
    print()
    print(f"Training steps/s while a draft is written, lowered ÷ normal: {spread(kept, '.2f')}")
    idle = [lo / no for lo, no in zip(warm["lowered"], warm["normal"], strict=True)]
    print(
        f"Training steps/s with nothing else running (the 2 s before each draft): normal "
        f"{spread(warm['normal'], '.1f')}, lowered {spread(warm['lowered'], '.1f')}; lowered ÷ normal "
        f"{spread(idle, '.2f')}"
    )


if __name__ == "__main__":
    main()
