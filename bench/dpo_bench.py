"""DPO step throughput and peak memory of our preference recipe against a bare trl.DPOTrainer, in the same run.

Usage (from the repository root, inside .venv):
    python bench/dpo_bench.py                                # 3 rounds of 6 steps, batch 2 pairs, 256 tokens
    python bench/dpo_bench.py --rounds 3 --steps 6 --core 1  # pin both sides to CPU 1

Both sides train the same model: the embedded SmolLM2-135M dequantized to a float32 Hugging Face folder (the
recipe's 4-bit loading is swapped for that plain load here, as trl trains what it is given), with the same LoRA
(r 16, alpha 32, every projection, no dropout) starting from the same saved adapter, gradient checkpointing,
AdamW, the same batch of pairs per step, the same maximum length, the same pairs (chat-formatted, the prompt
the same messages on both sides), and the reference log-probabilities computed once before the first step
(trl: ``precompute_ref_log_probs``), so a step is the same work: a forward and backward pass over the chosen and
rejected texts of its pairs. Each side runs in a fresh process pinned to one core (``os.sched_setaffinity``, one
torch thread), alternating which goes first; the first step (warm-up) is left out of the rate. Peak memory is
the process's maximum resident set.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from trainer.config import ALL_PROJECTIONS  # noqa: E402  (after the repository is on the path)

NAMES = ["Sam", "Priya", "Tom", "Lee", "Max", "Jo", "Ruth", "Omar"]
TOPICS = ["the report", "the budget", "Thursday's call", "the invoice", "the launch plan", "lunch", "the draft"]
THEIRS = [
    "I hope this email finds you well.",
    "I am writing to let you know that everything is on track.",
    "Please do not hesitate to contact me should you have any questions.",
    "Thank you for your patience and understanding in this matter.",
    "I would be grateful if you could confirm at your earliest convenience.",
]
MINE = ["All sorted.", "Friday works.", "Numbers attached.", "Call me if not.", "Thanks, quick one.", "Will do."]
LORA = {"r": 16, "alpha": 32.0, "targets": ALL_PROJECTIONS}


def pairs(n: int, seed: int = 5) -> list[dict]:
    """Instruction, the user's short text (chosen), the model's formal draft (rejected)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        name, topic = rng.choice(NAMES), rng.choice(TOPICS)
        chosen = f"Hey {name}!\n\n{' '.join(rng.sample(MINE, rng.randint(1, 3)))} Re {topic}.\n\nZed x"
        body = " ".join(rng.sample(THEIRS, rng.randint(2, 4)))
        rejected = f"Dear {name},\n\nRegarding {topic}: {body}\n\nKind regards,\nZed"
        out.append({"instruction": f"Write to {name} about {topic}", "chosen": chosen, "rejected": rejected})
    return out


def prepare(cache: Path) -> tuple[Path, Path]:
    """The float32 base folder and a starting LoRA adapter (saved once, shared by every round)."""
    import torch
    from peft import LoraConfig, get_peft_model

    from assistant.drafting.models import embedded_model_path
    from trainer import base_model

    folder = base_model.prepare_base(embedded_model_path(), cache)
    start = cache / "dpo-start"
    if not (start / "adapter_model.safetensors").is_file():
        torch.manual_seed(0)
        model = base_model.load_reference(folder)
        lora = LoraConfig(r=LORA["r"], lora_alpha=LORA["alpha"], lora_dropout=0.0, target_modules=list(LORA["targets"]),
                          task_type="CAUSAL_LM")  # fmt: skip
        peft = get_peft_model(model, lora)
        with torch.no_grad():  # a starting adapter that changes the model (B is zero when LoRA is created)
            for name, p in peft.named_parameters():
                if "lora_B" in name:
                    p.normal_(0, 0.002)
        peft.save_pretrained(start)
    return folder, start


def child(args: argparse.Namespace) -> dict:
    """One side, in this fresh process pinned to one core; returns its figures."""
    os.sched_setaffinity(0, {args.core})
    import torch

    torch.set_num_threads(1)
    cache = Path(args.cache)
    folder, start = prepare(cache)
    data = pairs(args.steps * args.batch)
    run = Path(tempfile.mkdtemp(prefix=f"dpo-bench-{args.child}-", dir=cache))
    try:
        stamps, tokens = (ours if args.child == "recipe" else bare_trl)(args, folder, start, data, run)
    finally:
        shutil.rmtree(run, ignore_errors=True)
    seconds = stamps[-1][0] - stamps[0][0]  # from the end of step 1 to the end of the last step
    return {
        "side": args.child,
        "steps_per_second": (len(stamps) - 1) / seconds,
        "steps_per_cpu_second": (len(stamps) - 1) / (stamps[-1][1] - stamps[0][1]),
        "tokens_per_second": sum(tokens[1:]) / seconds if tokens else None,
        "peak_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "steps": len(stamps),
    }


def _now() -> tuple[float, float]:
    """(wall, this process's CPU) seconds: the CPU time is insensitive to other work on the core."""
    return time.perf_counter(), time.process_time()


def ours(args, folder: Path, start: Path, data: list[dict], run: Path) -> tuple[list[tuple], list[int]]:
    from trainer import base_model
    from trainer.config import TrainConfig
    from trainer.preference import DPORecipe, PreferenceExample

    def plain(folder, device, dtype, cache_root, progress=None):  # the same float32 model trl trains
        return base_model.load_reference(folder).train()

    base_model.load_quantized = plain
    cfg = TrainConfig(
        base=str(folder), max_steps=args.steps, epochs=100, batch_size=args.batch, grad_accum=1,
        max_seq_len=args.seq, learning_rate=5e-5, lora_r=LORA["r"], lora_alpha=LORA["alpha"], lora_dropout=0.0,
        target_modules=LORA["targets"], eval_every=10**6, checkpoint_every=10**6, parity=False, cpu_threads=1,
        group_by_length=False,
    )  # fmt: skip
    examples = [PreferenceExample(p["instruction"], "", p["chosen"], p["rejected"]) for p in data]
    held = PreferenceExample("Say hi", "", "Hey!\n\nHi.\n\nZed x", "Dear Sir,\n\nHello.\n\nRegards", "validation")
    stamps: list[tuple[float, float]] = []
    tokens: list[int] = []

    def clock(event: dict) -> None:  # when a step is reported: after the optimizer step and its bookkeeping
        if event["event"] == "step":
            stamps.append(_now())

    recipe = DPORecipe(cfg, run, Path(args.cache), start, callback=clock)
    recipe.setup([*examples, held])
    step = recipe._train_step

    def counted() -> tuple[float, int, float]:
        loss, n, seconds = step()
        tokens.append(n)  # non-padding tokens of the step's chosen and rejected texts
        return loss, n, seconds

    recipe._train_step = counted  # type: ignore[method-assign]
    recipe.train()
    recipe.cleanup()
    return stamps, tokens


def bare_trl(args, folder: Path, start: Path, data: list[dict], run: Path) -> tuple[list[tuple], list[int]]:
    from datasets import Dataset
    from peft import PeftModel
    from transformers import TrainerCallback
    from trl import DPOConfig, DPOTrainer

    from trainer import base_model
    from trainer.data import messages, system_prompt
    from trainer.preference import PreferenceExample

    tokenizer = base_model.load_tokenizer(folder)
    model = base_model.load_reference(folder)
    model = PeftModel.from_pretrained(model, str(start), is_trainable=True)
    system = system_prompt()
    rows = []
    for p in data:  # the prompt as the recipe writes it (trainer.data.messages), the texts as assistant turns
        prompt = messages(system, PreferenceExample(p["instruction"], "", p["chosen"], p["rejected"]).example())
        rows.append({"prompt": prompt, "chosen": [{"role": "assistant", "content": p["chosen"]}],
                     "rejected": [{"role": "assistant", "content": p["rejected"]}]})  # fmt: skip
    stamps: list[tuple[float, float]] = []
    tokens: list[int] = []

    class Clock(TrainerCallback):
        def on_step_end(self, _args, _state, _control, **_kw):
            stamps.append(_now())
            tokens.append(trainer._total_train_tokens)  # cumulative non-padding tokens

    config = DPOConfig(
        output_dir=str(run), per_device_train_batch_size=args.batch, gradient_accumulation_steps=1,
        max_steps=args.steps, learning_rate=5e-5, beta=0.1, max_length=args.seq, precompute_ref_log_probs=True,
        precompute_ref_batch_size=args.batch, gradient_checkpointing=True, save_strategy="no", report_to="none",
        logging_steps=10**6, use_cpu=True, bf16=False, fp16=False, dataloader_num_workers=0, disable_dropout=True,
        max_grad_norm=1.0, lr_scheduler_type="cosine", seed=42, dataset_num_proc=None,
    )  # fmt: skip
    trainer = DPOTrainer(model=model, args=config, train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                         callbacks=[Clock()])  # fmt: skip
    trainer.train()
    per_step = [b - a for a, b in zip([0, *tokens[:-1]], tokens, strict=True)]
    return stamps, per_step


def run_side(side: str, argv: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", side, *argv], capture_output=True, text=True,
                         cwd=REPO, check=False)  # fmt: skip
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode or not lines:
        sys.exit(f"{side} failed:\n{out.stderr[-4000:]}")
    return json.loads(lines[-1])


def table(args: argparse.Namespace, rounds: list[dict], load: tuple[float, float]) -> str:
    import torch
    import transformers
    import trl

    def col(side: str, key: str) -> list[float]:
        return [r[key] for r in rounds if r["side"] == side and r[key] is not None]

    def cell(side: str, key: str, scale: float = 1.0, fmt: str = ".3f") -> str:
        values = [v / scale for v in col(side, key)]
        return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"

    def ratio_of(key: str) -> float:
        return statistics.median(col("recipe", key)) / statistics.median(col("trl", key))

    ratio, cpu_ratio = ratio_of("steps_per_second"), ratio_of("steps_per_cpu_second")
    command = " ".join(["python", "bench/dpo_bench.py", *sys.argv[1:]])
    lines = [
        "## Preference tuning (DPO): recipe against a bare trl.DPOTrainer (CPU, embedded)",
        "",
        f"Command: `{command}`  ",
        f"Machine: {platform.processor() or 'CPU'}, both sides pinned to core {args.core}, 1 torch thread; torch "
        f"{torch.__version__}, transformers {transformers.__version__}, trl {trl.__version__}, Python "
        f"{platform.python_version()}. Load average at the start: {load[0]:.1f}, at the end: {load[1]:.1f}.",
        "",
        f"SmolLM2-135M dequantized to float32, LoRA r {LORA['r']} on all 7 projections from the same starting "
        f"adapter, gradient checkpointing, AdamW, {args.batch} pairs per step, up to {args.seq} tokens, reference "
        f"log-probabilities precomputed; {args.steps} steps per run, the first left out; median (min-max) of "
        f"{len(rounds) // 2} rounds, each side a fresh process, alternating which runs first.",
        "",
        "| | bare trl.DPOTrainer | recipe | ratio |",
        "|---|---:|---:|---:|",
        f"| DPO steps/s (wall) | {cell('trl', 'steps_per_second')} | {cell('recipe', 'steps_per_second')} | "
        f"{ratio:.2f}x |",
        f"| DPO steps per CPU-second (insensitive to other load) | {cell('trl', 'steps_per_cpu_second')} | "
        f"{cell('recipe', 'steps_per_cpu_second')} | {cpu_ratio:.2f}x |",
        f"| tokens/s (chosen + rejected, no padding) | {cell('trl', 'tokens_per_second', fmt='.1f')} | "
        f"{cell('recipe', 'tokens_per_second', fmt='.1f')} | |",
        f"| peak memory (RSS, MiB) | {cell('trl', 'peak_bytes', 2**20, '.0f')} | "
        f"{cell('recipe', 'peak_bytes', 2**20, '.0f')} | |",
        "",
        "Steps/s per run: " + "; ".join(f"{r['side']} {r['steps_per_second']:.3f}" for r in rounds) + ".",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--batch", type=int, default=2, help="pairs per step")
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--core", type=int, default=max(os.sched_getaffinity(0)), help="the CPU both sides are pinned to")
    p.add_argument("--cache", default=str(REPO / "bench" / "out" / "train-cache"))
    p.add_argument("--out", default=str(REPO / "bench" / "out" / "dpo-section.md"))
    p.add_argument("--child", choices=["recipe", "trl"], help=argparse.SUPPRESS)
    args = p.parse_args()
    Path(args.cache).mkdir(parents=True, exist_ok=True)
    if args.child:
        print(json.dumps(child(args)))
        return
    argv = [a for a in sys.argv[1:] if not a.startswith("--out")]
    load_start = os.getloadavg()[0]
    rounds = []
    for n in range(args.rounds):
        for side in ("trl", "recipe") if n % 2 == 0 else ("recipe", "trl"):
            rounds.append(run_side(side, argv))
            r = rounds[-1]
            print(f"round {n + 1}: {side} {r['steps_per_second']:.3f} steps/s, {r['peak_bytes'] / 2**20:,.0f} MiB",
                  file=sys.stderr)  # fmt: skip
    section = table(args, rounds, (load_start, os.getloadavg()[0]))
    Path(args.out).write_text(section)
    print(section)


if __name__ == "__main__":
    main()
