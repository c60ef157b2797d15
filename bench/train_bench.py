"""Training throughput and peak memory of the QLoRA recipe against a bare peft loop, in the same run.

Usage (from the repository root, inside .venv):
    python bench/train_bench.py                                  # CPU, the embedded SmolLM2-135M
    python bench/train_bench.py --rounds 3 --steps 8 --parity    # also the llama.cpp parity numbers
    python bench/train_bench.py --device cuda --shape llama3-8b  # GPU: random weights from a config

Both sides train the same 4-bit NF4 base with the same LoRA (r 16 on every projection), gradient
checkpointing, AdamW, on the same batches (same examples, batch size, sequence length, order); each side runs
in a fresh process, alternating which goes first, and the first step (warm-up) is left out. "Tokens" are all
non-padding tokens of a step. Peak memory is the process's maximum resident set (CPU) or the maximum CUDA
memory allocated (GPU), next to what preflight estimates.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
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
OPENERS = ["Hi {name},", "Hey {name}!", "Dear {name},", "Morning {name},"]
SENTENCES = [
    "Thanks for sending the report over so quickly.",
    "Could we move our call to Thursday afternoon?",
    "I have attached the updated budget with the changes we discussed.",
    "Sorry for the late reply, it has been a busy week.",
    "The client signed off on the proposal this morning.",
    "Can you check the numbers in the second table before Friday?",
    "Lunch next week sounds great, let me know which day works.",
    "I will be out of the office until Monday.",
    "The invoice should reach you by the end of the month.",
    "Let's keep the agenda short and focus on the launch plan.",
    "I spoke to the team and everyone is on board.",
    "Please let me know if anything is unclear.",
    "We are still waiting for the final figures from finance.",
    "The meeting room is booked from two to three.",
    "Happy to help with the draft if you need a second pair of eyes.",
    "I think we should push the deadline by a week.",
    "Great work on the presentation yesterday.",
]
CLOSERS = ["Best,\nAna", "Cheers,\nAna", "Thanks,\nAna", "Speak soon,\nAna"]
TOPICS = ["the report", "the budget", "Thursday's call", "the invoice", "the launch plan", "lunch", "the draft"]
NAMES = ["Sam", "Priya", "Tom", "Lee", "Max", "Jo", "Ruth", "Omar"]


def examples(n: int, seed: int = 3, sentences: tuple[int, int] = (2, 6)) -> list[dict]:
    """Plausible work emails of ``sentences`` (at least, at most) sentences each (parity is measured on text like
    what users train on); beyond the distinct sentences there are, some repeat."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        name = rng.choice(NAMES)
        k = rng.randint(*sentences)
        body = " ".join(rng.sample(SENTENCES, k) if k <= len(SENTENCES) else rng.choices(SENTENCES, k=k))
        out.append(
            {
                "instruction": f"Write to {name} about {rng.choice(TOPICS)}",
                "output": f"{rng.choice(OPENERS).format(name=name)}\n\n{body}\n\n{rng.choice(CLOSERS)}",
                "split": "train",
            }
        )
    return out


def base_for(args: argparse.Namespace, cache: Path) -> str:
    from assistant.drafting.models import embedded_model_path

    if args.shape == "embedded":
        return str(embedded_model_path())
    return str(random_model(args.shape, cache))


def random_model(shape_name: str, cache: Path) -> Path:
    """A Hugging Face folder with random weights in the named shape (the embedded model's tokenizer)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig

    from assistant.drafting.models import embedded_model_path
    from trainer.shapes import SHAPES

    folder = cache / f"random-{shape_name}"
    if (folder / "config.json").is_file():
        return folder
    s = SHAPES[shape_name]
    config = LlamaConfig(
        hidden_size=s.hidden,
        intermediate_size=s.intermediate,
        num_hidden_layers=s.layers,
        num_attention_heads=s.heads,
        num_key_value_heads=s.kv_heads,
        vocab_size=s.vocab,
        tie_word_embeddings=s.tied_embeddings,
        max_position_embeddings=8192,
    )
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):  # an 8B model initialises in seconds there
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(folder)
    gguf = embedded_model_path()
    AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(folder)
    return folder


def peak_memory(device: str) -> int:
    if device == "cuda":
        import torch

        return torch.cuda.max_memory_allocated()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def child(args: argparse.Namespace) -> dict:
    """One side of the comparison, in this (fresh) process; prints a JSON line."""
    import torch

    from trainer.data import from_rows

    torch.set_num_threads(args.threads) if args.device == "cpu" else None
    cache = Path(args.cache)
    cfg = bench_config(args, args.device)
    data = from_rows(examples(args.steps * args.batch))
    run = tempfile.mkdtemp(prefix="train-bench-", dir=cache)
    times, tokens, cpu0 = (bare if args.child == "bare" else recipe)(cfg, data, cache, Path(run))
    cpu = time.process_time() - cpu0
    return {
        "side": args.child,
        "tokens_per_second": sum(tokens[1:]) / sum(times[1:]),
        "tokens_per_cpu_second": sum(tokens) / cpu,
        "peak_bytes": peak_memory(args.device),
        "step_seconds": times,
        "run": run,
    }


def bench_config(args: argparse.Namespace, device: str, **changes: object):
    """The settings a benchmark trains with: ``--steps`` steps of ``--batch`` examples of up to ``--seq`` tokens, no
    accumulation, evaluation, checkpoint, parity check or dropout (``changes`` override)."""
    from trainer.config import TrainConfig

    return TrainConfig(
        base=base_for(args, Path(args.cache)),
        max_steps=args.steps,
        epochs=100,
        batch_size=args.batch,
        grad_accum=1,
        max_seq_len=args.seq,
        eval_every=10**6,
        checkpoint_every=10**6,
        device=device,
        parity=False,
        lora_dropout=0.0,
    ).replace(**changes)


def recipe(cfg, data, cache: Path, run: Path):
    from trainer.recipe import LoRARecipe

    events: list[dict] = []
    r = LoRARecipe(cfg, run, cache, callback=events.append)
    r.setup(data)
    cpu0 = time.process_time()
    r.train()
    times, tokens = step_times(events)
    return times, tokens, cpu0


def step_times(events: list[dict]) -> tuple[list[float], list[int]]:
    """Each step's wall time (between step reports: everything the recipe does per step, logging included) and
    tokens (from its reported rate and its own duration), from a recipe's events."""
    steps = [e for e in events if e["event"] == "step"]
    own = [e["elapsed"] - p for e, p in zip(steps, [0.0] + [s["elapsed"] for s in steps[:-1]], strict=True)]
    tokens = [round(e["tokens_per_second"] * t) for e, t in zip(steps, own, strict=True)]
    times = [own[0]] + [b["time"] - a["time"] for a, b in zip(steps, steps[1:], strict=False)]
    return times, tokens


def bare(cfg, data, cache: Path, run: Path):
    """The loop everyone writes first: peft on the 4-bit base, full logits, HF's own loss."""
    import torch
    from peft import LoraConfig, get_peft_model

    from trainer import base_model
    from trainer.data import collate, encode_all, plan_batches

    device = base_model.pick_device(cfg.device)
    dtype = base_model.compute_dtype("auto", device)
    folder = base_model.prepare_base(cfg.base, cache)
    tok = base_model.load_tokenizer(folder)
    model = base_model.load_quantized(folder, device, dtype, cache)
    model.activation_checkpointing_enable({"use_reentrant": False})
    model.enable_input_require_grads()
    model.config.use_cache = False
    torch.manual_seed(cfg.seed)
    with base_model.peft_quietly():
        model = get_peft_model(
            model,
            LoraConfig(
                r=cfg.lora_r,
                lora_alpha=cfg.lora_alpha,
                lora_dropout=0.0,
                target_modules=list(cfg.target_modules),
                task_type="CAUSAL_LM",
            ),
        )
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.learning_rate)
    encoded = encode_all(tok, data, cfg.max_seq_len).train
    plan = plan_batches([len(e) for e in encoded], cfg.batch_size, cfg.seed, 0)
    times, tokens = [], []
    cpu0 = time.process_time()
    for batch_ids in plan[: cfg.max_steps]:
        t0 = time.perf_counter()
        batch = {k: v.to(device) for k, v in collate([encoded[i] for i in batch_ids], tok.pad_token_id).items()}
        model(**batch).loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
        tokens.append(int(batch["attention_mask"].sum()))
    return times, tokens, cpu0


def estimate(args: argparse.Namespace, cache: Path) -> float:
    from trainer.config import TrainConfig
    from trainer.preflight import estimate_memory
    from trainer.shapes import SHAPES, shape_of

    shape = shape_of(base_for(args, cache)) if args.shape == "embedded" else SHAPES[args.shape]
    cfg = TrainConfig(batch_size=args.batch, max_seq_len=args.seq)
    return estimate_memory(shape, cfg, args.device).total


def run_side(side: str, argv: list[str], script: str = __file__, env: dict[str, str] | None = None) -> dict:
    """Run ``script --child side`` in a fresh process (with ``env``, else this one's environment); its last JSON
    line."""
    out = subprocess.run(
        [sys.executable, script, "--child", side, *argv],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
        env=env,
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode or not lines:
        sys.exit(f"{side} failed:\n{out.stderr[-3000:]}")
    return json.loads(lines[-1])


def parity_numbers(args: argparse.Namespace, cache: Path, run: str) -> dict:
    """Parity of the recipe's adapter, plus the q/k permutation shown to matter (see trainer/parity.py)."""
    import torch
    from safetensors.torch import load_file, save_file

    import trainer.export as export
    from trainer import parity
    from trainer.base_model import prepare_base
    from trainer.data import from_rows

    gguf = Path(base_for(args, cache))
    folder = prepare_base(gguf, cache)
    adapter = Path(run) / "final"
    prompts = from_rows(examples(8, seed=99))
    export.export_gguf(adapter, folder, Path(run) / "a.gguf", "llama")
    report = parity.check(
        gguf, Path(run) / "a.gguf", folder, adapter, prompts, 8, threads=args.threads, nf4_cache=cache
    ).to_json()
    # A q/k-only adapter with strong random updates: only the permutation makes llama.cpp agree.
    qk = Path(run) / "qk"
    shutil.copytree(adapter, qk)
    state, g = load_file(str(qk / "adapter_model.safetensors")), torch.Generator().manual_seed(0)
    for key in state:
        if "lora_B" in key:
            keep = "q_proj" in key or "k_proj" in key
            state[key] = torch.randn(state[key].shape, generator=g) * 0.05 if keep else torch.zeros_like(state[key])
    save_file(state, str(qk / "adapter_model.safetensors"))
    result = {"trained": report}
    for permute in (True, False):
        export.ARCHITECTURES["llama"] = ("llama", permute)
        export.export_gguf(qk, folder, qk / "a.gguf")
        result[f"qk_permuted_{permute}"] = parity.check(
            gguf, qk / "a.gguf", folder, qk, prompts, 8, threads=args.threads
        ).to_json()
    export.ARCHITECTURES["llama"] = ("llama", True)
    return result


def markdown(args: argparse.Namespace, rounds: list[dict], est: float, par: dict | None, load: tuple) -> str:
    def med(side: str, key: str) -> float:
        return statistics.median(r[key] for r in rounds if r["side"] == side)

    import platform

    import torch

    ratio = med("recipe", "tokens_per_second") / med("bare", "tokens_per_second")
    cpu_ratio = med("recipe", "tokens_per_cpu_second") / med("bare", "tokens_per_cpu_second")
    device = (
        torch.cuda.get_device_name()
        if args.device == "cuda"
        else f"{platform.processor() or 'CPU'}, {len(os.sched_getaffinity(0))} CPUs, {args.threads} torch thread(s)"
    )
    lines = [
        f"<!-- train-bench:{args.device} -->",
        f"## Training: QLoRA recipe against a bare peft loop ({args.device.upper()}, {args.shape})",
        "",
        f"Command: `{' '.join(['python', 'bench/train_bench.py', *sys.argv[1:]])}`  ",
        f"Machine: {device}; torch {torch.__version__}, Python {platform.python_version()}. Load average at the "
        f"start: {load[0]:.1f}, at the end: {load[1]:.1f}.",
        "",
        f"Same 4-bit NF4 base, LoRA r 16 on all 7 projections, gradient checkpointing, AdamW, batch {args.batch}, "
        f"up to {args.seq} tokens, {args.steps} steps (the first left out), the same batches in the same order; "
        f"medians of {len(rounds) // 2} rounds, each side a fresh process, alternating which runs first.",
        "",
        "| | bare peft loop | recipe | ratio | goal |",
        "|---|---:|---:|---:|---|",
        f"| training tokens/s (wall) | {med('bare', 'tokens_per_second'):.1f} | "
        f"{med('recipe', 'tokens_per_second'):.1f} | {ratio:.2f}x | >= 0.9x |",
        f"| tokens per CPU-second (insensitive to other load) | {med('bare', 'tokens_per_cpu_second'):.1f} | "
        f"{med('recipe', 'tokens_per_cpu_second'):.1f} | {cpu_ratio:.2f}x | |",
        f"| peak memory | {med('bare', 'peak_bytes') / 2**20:,.0f} MiB | {med('recipe', 'peak_bytes') / 2**20:,.0f} "
        f"MiB | | preflight estimate {est / 2**20:,.0f} MiB |",
        "",
        "Tokens/s per round: " + "; ".join(f"{r['side']} {r['tokens_per_second']:.1f}" for r in rounds) + ".",
        "",
    ]
    if par:
        t, yes, no = par["trained"], par["qk_permuted_True"], par["qk_permuted_False"]
        lines += [
            "Parity (`trainer/parity.py`): top-1 next-token agreement of llama.cpp (Q4_1 base GGUF + exported "
            f"adapter GGUF) with PEFT, over {t['positions']} email positions of {t['examples']} prompts:",
            "",
            "| comparison | agreement |",
            "|---|---:|",
            f"| llama.cpp + adapter vs PEFT on the base dequantized from the same GGUF (float32) | "
            f"{t['agreement']:.1%} |",
            f"| the same, only where PEFT's first choice leads the second by >= 1 logit | "
            f"{t['decisive_agreement']:.1%} |",
            f"| llama.cpp + adapter vs PEFT on the NF4 base it was trained on | {t['nf4_agreement']:.1%} |",
            f"| without adapters: llama.cpp vs the float32 base (quantized arithmetic alone) | "
            f"{t['base_agreement']:.1%} |",
            f"| positions where the adapter changes llama.cpp's choice | {t['adapter_changed']:.1%} |",
            f"| q/k-only random adapter, exported with the q/k row permutation | {yes['agreement']:.1%} |",
            f"| the same adapter exported without the permutation | {no['agreement']:.1%} |",
            "",
        ]
    lines += NOTES.get(args.device, [])
    return "\n".join(lines) + "\n"


NOTES = {
    "cpu": [
        "**Reading these numbers.** The recipe computes logits only where the next token is an email token "
        "(the bare loop computes them for every position), which pays for its bookkeeping (token-weighted loss, "
        "metrics, the cancel check) and lowers the peak. Preflight's estimate is an upper bound on purpose: it "
        "assumes logits at every position and 1 GB of framework overhead. The parity gap to 100% is llama.cpp's "
        "quantized arithmetic (Q4_1 weights, 8-bit activations), as the no-adapter row shows; where the float32 "
        "model is sure of its choice the two agree. The q/k rows show the permutation is needed and right. NF4 "
        "re-quantizes the Q4_1 weights once more, so the model trained on differs from the GGUF served; that is "
        "why parity is measured against the float32 copy of the served weights.",
        "",
        "No GPU was available on the machine that produced this section. The GPU half of the benchmark, for a "
        "machine with one: `python bench/train_bench.py --device cuda --shape llama3-8b --rounds 3 "
        "--steps 10 --batch 4 --seq 1024` (random weights in Llama-3-8B's shape, quantized to NF4 on the GPU).",
        "",
    ],
}


def write_section(path: Path, section: str, device: str) -> None:
    """Replace this device's section of the file (other devices' sections stay)."""
    text = path.read_text() if path.exists() else "# Training benchmarks\n\n"
    pattern = re.compile(rf"<!-- train-bench:{device} -->.*?(?=<!-- train-bench:|\Z)", re.S)
    text = pattern.sub(lambda _m: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section
    path.write_text(text)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--shape", default="embedded", help="embedded, or a preflight SHAPES name (random weights)")
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest on a busy machine)")
    p.add_argument("--cache", default=str(REPO / "bench" / "out" / "train-cache"))
    p.add_argument("--parity", action="store_true", help="also measure llama.cpp parity (CPU, embedded only)")
    p.add_argument("--out", default=str(REPO / "bench" / "out" / "train-section.md"))
    p.add_argument("--child", choices=["bare", "recipe"], help=argparse.SUPPRESS)
    args = p.parse_args()
    Path(args.cache).mkdir(parents=True, exist_ok=True)
    if args.child:
        print(json.dumps(child(args)))
        return
    argv = [a for a in sys.argv[1:] if a != "--parity"]
    load_start = os.getloadavg()[0]
    rounds = []
    for n in range(args.rounds):
        for side in ("bare", "recipe") if n % 2 == 0 else ("recipe", "bare"):
            rounds.append(run_side(side, argv))
            print(
                f"round {n + 1}: {side} {rounds[-1]['tokens_per_second']:.1f} tokens/s, "
                f"{rounds[-1]['peak_bytes'] / 2**20:,.0f} MiB",
                file=sys.stderr,
            )
    par = None
    if args.parity:
        recipe_runs = [r["run"] for r in rounds if r["side"] == "recipe"]
        par = parity_numbers(args, Path(args.cache), recipe_runs[-1])
    for r in rounds:  # the runs' checkpoints and adapters are of no further use
        shutil.rmtree(r["run"], ignore_errors=True)
    section = markdown(args, rounds, estimate(args, Path(args.cache)), par, (load_start, os.getloadavg()[0]))
    write_section(Path(args.out), section, args.device)
    print(section)


if __name__ == "__main__":
    main()
