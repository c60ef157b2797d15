"""Preflight: what this machine can train, how much memory a run needs, how long it takes, what to change.

Peak memory of a QLoRA step, in bytes (b = batch, s = sequence length, h = hidden size):
  weights      4-bit NF4 projections (0.5 byte + ~0.016 of block scales per parameter), embeddings and
               output matrix unquantized in the compute dtype;
  LoRA         r x (in + out) per adapted matrix, float32;
  optimizer    gradient + AdamW's two moments: 12 bytes per LoRA parameter;
  activations  with checkpointing, each layer's input (layers x b x s x h) plus one layer recomputed in the
               backward pass (~ b x s x (10 h + 4 intermediate)); attention scores b x heads x s^2 off CUDA;
  logits       b x s x vocab x (compute bytes + 4 + 4): the logits, their float32 copy for the loss, and its
               gradient. Llama 3's 128k vocabulary makes this the largest term at long sequences;
  overhead     the framework and allocator: 1 GB + 10%;
  heap         on the CPU without checkpointing, what glibc's heap holds beyond the tensors: a step's blocks come
               from a heap that fragments (a run with checkpointing maps them itself: trainer.process).
Time: tokens x 6 x parameters FLOPs with checkpointing (forward, input gradients, recompute) at a measured
rate from an earlier run on this machine, else at a quick matrix-multiply benchmark x an efficiency factor.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from assistant.errors import MailvoiceError
from trainer.config import TrainConfig
from trainer.shapes import SHAPES, ModelShape

GB = 2**30
NF4_BYTES = 0.5 + 1 / 64 + 4 / (64 * 256)  # 4-bit codes + 8-bit block scales + their fp32 scales (double quant)
# Training tokens/s x the FLOPs counted per token (above) / the matrix-multiply benchmark: the share of matmul
# peak a QLoRA step reaches (dequantization, small ops). The CPU figure is the median rate of seven training runs
# of the embedded model on the CPU recipe, one core each, against the benchmark on a core (BENCHMARKS.md "The
# matrix benchmark on a shared core").
EFFICIENCY = {"cuda": 0.35, "cpu": 0.53}
CPU_PRODUCT = 512  # the CPU benchmark's matrices: a product takes a few milliseconds on a laptop core
BENCH_SECONDS = 0.3
MOST_PRODUCTS = 10_000  # however coarse the clock
# glibc's heap beyond the activations and logits it holds on the CPU without checkpointing: the embedded model's
# peak with glibc's default against the tensors' own (BENCHMARKS.md "The training worker's memory allocator"),
# rounded up.
HEAP_SHARE = 0.75
# A CPU step with gradient checkpointing under the worker's allocator setting (trainer.process.ALLOCATOR_ENV)
# against one under glibc's default: between the 0.80 and 0.87 measured on real prompts and on full sequences
# (BENCHMARKS.md "The training worker's memory allocator").
CPU_ALLOCATOR_SPEED = 0.83


# Settings for training on a CPU, used for every one the person has not set: the defaults (1,024 tokens, batch
# 4 x 2, an evaluation every 50 steps) are meant for a GPU, where a step takes a second; on a laptop CPU it takes
# minutes, so smaller batches and more frequent evaluations and checkpoints keep a run that can be stopped at any
# time useful. The sequences stay as long as a GPU's: an example is written with the drafting prompt, which shows
# up to three of the user's emails, and at 512 tokens most had room for one, and only beside a short email (the
# adapter learned that an email shown with examples is short: QUALITY.md). Gradient checkpointing is off: a step
# is about 1.4 times as fast without it (BENCHMARKS.md "Training on the CPU without gradient checkpointing") for
# about 2.3 GB more in a run of the embedded model; a run that does not fit without it gets it back from preflight
# (:func:`_candidates`).
CPU_RECIPE: dict[str, Any] = {
    "max_seq_len": 1024,
    "batch_size": 2,
    "grad_accum": 2,
    "eval_every": 10,
    "eval_max_examples": 16,
    "checkpoint_every": 10,
    "parity_examples": 2,
    "gradient_checkpointing": False,
}


class PreflightError(MailvoiceError):
    """The run cannot fit in this machine's memory, or would take far too long."""


@dataclass
class Hardware:
    device: str  # cuda | cpu (training device); MPS is reported but trains on CPU
    name: str
    memory_total: int  # bytes of the training device (GPU memory, or RAM)
    memory_available: int
    ram_total: int
    ram_available: int
    cpus: int
    bf16: bool = False
    mps: bool = False
    notes: list[str] = field(default_factory=list)


def _ram() -> tuple[int, int]:
    try:
        import psutil

        vm = psutil.virtual_memory()
        return vm.total, vm.available
    except ImportError:  # psutil is optional: sysconf covers Linux and macOS
        page = os.sysconf("SC_PAGE_SIZE")
        return os.sysconf("SC_PHYS_PAGES") * page, os.sysconf("SC_AVPHYS_PAGES") * page


def detect() -> Hardware:
    import torch

    total, available = _ram()
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if torch.cuda.is_available():
        free, gpu_total = torch.cuda.mem_get_info()
        return Hardware(
            "cuda",
            torch.cuda.get_device_name(),
            gpu_total,
            free,
            total,
            available,
            cpus,
            bf16=torch.cuda.is_bf16_supported(),
        )
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    notes = ["Apple GPU found, but 4-bit training has no Apple GPU kernels: training runs on the CPU."] if mps else []
    name = f"CPU ({cpus} core{'s' * (cpus != 1)})"
    return Hardware("cpu", name, total, available, total, available, cpus, mps=mps, notes=notes)


@dataclass(frozen=True)
class Recipe:
    """The settings a machine gets for every one the person has not set, and why."""

    name: str  # cpu | gpu
    settings: dict[str, Any]
    why: str


def machine_recipe(hw: Hardware) -> Recipe:
    """The recipe for ``hw``: the defaults on a GPU, :data:`CPU_RECIPE` everywhere else."""
    if hw.device == "cuda":
        return Recipe("gpu", {}, f"training on {hw.name}")
    why = "this Mac's GPU cannot train 4-bit models" if hw.mps else "no GPU was found"
    return Recipe("cpu", dict(CPU_RECIPE), f"{why}, so training runs on the CPU")


def lora_parameters(shape: ModelShape, r: int, targets: tuple[str, ...]) -> int:
    h, inter, kv = shape.hidden, shape.intermediate, shape.head_dim * shape.kv_heads
    sizes = {
        "q_proj": (h, h),
        "k_proj": (h, kv),
        "v_proj": (h, kv),
        "o_proj": (h, h),
        "gate_proj": (h, inter),
        "up_proj": (h, inter),
        "down_proj": (inter, h),
    }
    return shape.layers * sum(r * sum(sizes[t]) for t in targets if t in sizes)


def _input_width(shape: ModelShape, target: str) -> int:
    """The width of what a projection reads: the hidden size, or the MLP's for ``down_proj``; 0 for no layer."""
    known = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj"}
    return shape.intermediate if target == "down_proj" else shape.hidden if target in known else 0


@dataclass
class MemoryEstimate:
    weights: int
    lora: int
    optimizer: int
    activations: int
    logits: int
    overhead: int
    heap: int = 0

    @property
    def total(self) -> int:
        return self.weights + self.lora + self.optimizer + self.activations + self.logits + self.overhead + self.heap

    def to_json(self) -> dict[str, float]:
        return {k: round(v / GB, 3) for k, v in {**asdict(self), "total": self.total}.items()}


def estimate_memory(shape: ModelShape, cfg: TrainConfig, device: str) -> MemoryEstimate:
    act = 2 if device == "cuda" else 4  # compute dtype bytes: bf16/fp16 on GPUs, fp32 on CPU
    h, b, s = shape.hidden, cfg.batch_size, cfg.max_seq_len
    kv = shape.head_dim * shape.kv_heads
    projections = shape.layers * (2 * h * h + 2 * h * kv + 3 * h * shape.intermediate)
    embeddings = shape.vocab * h * (1 if shape.tied_embeddings else 2)
    lora = lora_parameters(shape, cfg.lora_r, cfg.target_modules)
    per_layer = b * s * (10 * h + 4 * shape.intermediate) * act
    attention = b * shape.heads * s * s * act if device != "cuda" else 0  # CUDA SDPA is memory-efficient
    # Without checkpointing every layer keeps its activations: 12 hidden-sized tensors is what the embedded model's
    # peak measured (bench/checkpointing_bench.py, no dropout), rounded up. LoRA dropout keeps a dropped copy of
    # each adapted projection's input as well (a training run's peak measured that too: BENCHMARKS.md).
    dropped = sum(_input_width(shape, t) for t in cfg.target_modules) if cfg.lora_dropout > 0 else 0
    stored = (shape.layers if cfg.gradient_checkpointing else shape.layers * 12) * b * s * h * act
    if not cfg.gradient_checkpointing:
        stored += shape.layers * b * s * dropped * act
    weights = int(projections * NF4_BYTES + embeddings * act)
    activations, logits = stored + per_layer + attention, b * s * shape.vocab * (act + 8)
    subtotal = weights + lora * 16 + activations + logits
    fragmenting = device == "cpu" and not cfg.gradient_checkpointing
    return MemoryEstimate(
        weights=weights,
        lora=lora * 4,
        optimizer=lora * 12,
        activations=activations,
        logits=logits,
        overhead=GB + subtotal // 10,
        heap=int((activations + logits) * HEAP_SHARE) if fragmenting else 0,
    )


def matmul_flops(device: str) -> float:
    """A quick matrix-multiply benchmark: FLOP/s of this device in the dtype training computes in.

    On a CPU it is the fastest of many small products (:data:`CPU_PRODUCT`, for :data:`BENCH_SECONDS`): another
    process on the same core takes it in time slices of a few milliseconds, which a large product always spans
    (it then reads half or less) and a small one mostly falls between. So the estimate is what the core does for
    training, not what it did in the moment another program held it (BENCHMARKS.md "The matrix benchmark on a
    shared core"); while training runs, the time left follows its own steps.
    """
    import torch

    if device == "cuda":
        n = 4096
        a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
        (a @ a).sum().item()  # warm up (and wait for CUDA)
        return best_round(lambda: a @ a, 2 * n**3, lambda c: c.sum().item())
    a = torch.randn(CPU_PRODUCT, CPU_PRODUCT, dtype=torch.float32)
    a @ a  # warm up
    return fastest(lambda: a @ a, 2 * CPU_PRODUCT**3)


def best_round(product: Callable[[], Any], flops: float, wait: Callable[[Any], object], rounds: int = 3) -> float:
    """FLOP/s of the best of ``rounds`` rounds of four ``product()`` calls, each doing ``flops``; ``wait(out)``
    returns when the last one is done (a GPU's calls return at once). Other work on the machine slows some
    rounds, never speeds one up."""
    best, repeats = 0.0, 4
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(repeats):
            out = product()
        wait(out)
        best = max(best, flops * repeats / (time.perf_counter() - started))
    return best


def fastest(
    product: Callable[[], object],
    flops: float,
    seconds: float = BENCH_SECONDS,
    least: int = 5,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """FLOP/s of the fastest of the ``product()`` calls made in ``seconds`` (at least ``least``, at most
    :data:`MOST_PRODUCTS` of them), each doing ``flops``. A call the clock saw take no time tells nothing; when
    none took any, the calls' mean (a clock too coarse for one)."""
    shortest, made, first = float("inf"), 0, clock()
    while made < least or (clock() < first + seconds and made < MOST_PRODUCTS):
        started = clock()
        product()
        took = clock() - started
        if took > 0:
            shortest = min(shortest, took)
        made += 1
    return flops / (shortest if shortest < float("inf") else max(clock() - first, 1e-9) / made)


def tokens_per_second(shape: ModelShape, device: str, gradient_checkpointing: bool = True) -> float:
    """Assumed training throughput for ``shape`` on ``device`` (no earlier run to go by)."""
    flops_per_token = (6 if gradient_checkpointing else 4) * shape.parameters  # checkpointing repeats the forward
    allocator = CPU_ALLOCATOR_SPEED if gradient_checkpointing and device == "cpu" else 1.0
    return matmul_flops(device) * EFFICIENCY.get(device, 0.25) * allocator / flops_per_token


def train_seconds(cfg: TrainConfig, train_tokens: int, rate: float, examples: int = 0, once: int = 0) -> float:
    """How long a run of ``cfg`` takes over ``train_tokens`` per epoch of ``examples`` sequences (0: not known,
    taken as full ones) at ``rate`` tokens a second, plus ``once`` tokens' work done once for the run."""
    tokens = train_tokens * cfg.epochs
    if cfg.max_steps:
        per_sequence = train_tokens / examples if examples else min(cfg.max_seq_len, 512)
        tokens = min(tokens, cfg.max_steps * cfg.batch_size * cfg.grad_accum * per_sequence)
    return (tokens + once) / max(rate, 1e-9)


@dataclass
class Preflight:
    hardware: Hardware
    shape: ModelShape
    memory: MemoryEstimate
    fits: bool
    recommended: dict[str, int]  # batch_size, grad_accum, max_seq_len, gradient_checkpointing that fit (the asked
    # ones when they do)
    train_tokens: int
    tokens_per_second: float
    rate_source: str  # measured | assumed
    hours: float
    problems: list[str] = field(default_factory=list)  # reasons to refuse
    advice: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "hardware": asdict(self.hardware),
            "base": asdict(self.shape),
            "memory_gb": self.memory.to_json(),
            "fits": self.fits,
            "recommended": self.recommended,
            "train_tokens": self.train_tokens,
            "tokens_per_second": round(self.tokens_per_second, 1),
            "rate_source": self.rate_source,
            "hours": round(self.hours, 2),
            "problems": self.problems,
            "advice": self.advice,
        }


def _fits(shape: ModelShape, cfg: TrainConfig, hw: Hardware) -> tuple[bool, MemoryEstimate]:
    estimate = estimate_memory(shape, cfg, hw.device)
    return estimate.total <= hw.memory_available * 0.9, estimate


def _candidates(cfg: TrainConfig) -> list[TrainConfig]:
    """The asked settings; without gradient checkpointing, the same with it (slower, far less memory); then
    smaller micro-batches (same effective batch), then shorter sequences."""
    effective = cfg.batch_size * cfg.grad_accum
    out = [cfg]
    if not cfg.gradient_checkpointing:
        cfg = replace(cfg, gradient_checkpointing=True)
        out.append(cfg)
    for seq in sorted({cfg.max_seq_len, min(cfg.max_seq_len, 512), min(cfg.max_seq_len, 256)}, reverse=True):
        for batch in (cfg.batch_size, 2, 1):
            if batch <= cfg.batch_size:
                out.append(replace(cfg, batch_size=batch, grad_accum=max(1, effective // batch), max_seq_len=seq))
    return out


def preflight(
    shape: ModelShape,
    cfg: TrainConfig,
    hw: Hardware,
    train_tokens: int,
    measured_rate: float | None = None,
    examples: int = 0,
    once_tokens: int = 0,
) -> Preflight:
    """Check ``cfg`` on ``shape`` against this machine; ``train_tokens`` is the train split's size, in
    ``examples`` sequences; ``once_tokens``: work done once for the run (see :func:`train_seconds`);
    ``measured_rate``: tokens/s of an earlier run here that trained with ``cfg``'s gradient checkpointing."""
    fits, memory = _fits(shape, cfg, hw)
    chosen = next((c for c in _candidates(cfg) if _fits(shape, c, hw)[0]), None)
    checkpointing = (chosen or cfg).gradient_checkpointing  # as the run will train
    if checkpointing != cfg.gradient_checkpointing:
        measured_rate = None  # measured by a run that trained as asked, not as it will
    rate = measured_rate or tokens_per_second(shape, hw.device, checkpointing)
    hours = train_seconds(cfg, train_tokens, rate, examples, once_tokens) / 3600
    pf = Preflight(
        hw,
        shape,
        memory,
        fits,
        {},
        train_tokens,
        rate,
        "measured" if measured_rate else "assumed",
        hours,
        advice=list(hw.notes),
    )
    if chosen is None:
        smaller = [
            s
            for s in SHAPES.values()
            if s.parameters < shape.parameters and _fits(s, replace(cfg, batch_size=1, max_seq_len=512), hw)[0]
        ]
        suggestion = f" A smaller base fits, e.g. {smaller[-1].name}." if smaller else ""
        pf.problems.append(
            f"Training {shape.name} needs about {memory.total / GB:.1f} GB, and even with 1 example of 256 "
            f"tokens per step it does not fit in the {hw.memory_available / GB:.1f} GB available on "
            f"{hw.name}.{suggestion}"
        )
    else:
        pf.recommended = {
            "batch_size": chosen.batch_size,
            "grad_accum": chosen.grad_accum,
            "max_seq_len": chosen.max_seq_len,
            "gradient_checkpointing": chosen.gradient_checkpointing,
        }
        if not fits:
            turned_on = chosen.gradient_checkpointing and not cfg.gradient_checkpointing
            turn_on = " gradient_checkpointing on," if turned_on else ""
            pf.advice.append(
                f"The settings asked for need ~{memory.total / GB:.1f} GB; use{turn_on} batch_size "
                f"{chosen.batch_size}, grad_accum {chosen.grad_accum}, max_seq_len {chosen.max_seq_len}."
            )
    if hours > cfg.max_hours:
        pf.problems.append(
            f"Training would take about {hours / 24:.1f} days on {hw.name} ({rate:,.0f} tokens/s, "
            f"{hours * 3600 * rate:,.0f} tokens). Use fewer pairs, epochs or steps, a smaller base, or a GPU."
        )
    elif hours > 2 and hw.device == "cpu":
        pf.advice.append(f"Training on the CPU takes about {hours:.1f} hours; a GPU would take minutes.")
    return pf


def check(pf: Preflight) -> None:
    """Raise :class:`PreflightError` with every reason when the run should not start."""
    if not pf.ok:
        raise PreflightError(" ".join(pf.problems))
