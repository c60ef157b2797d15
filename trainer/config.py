"""TrainConfig: every training setting, typed and documented, with the one set of defaults.

The resolved config (defaults < the ``train`` setting < command-line options) is saved as ``config.json`` in
each run folder and inside every adapter's ``adapter_config.json``; a run is resumed and an adapter is rebuilt
from that file, never from whatever the defaults are by then.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.errors import MailvoiceError

PREFERENCE_RATE_LARGE = 5e-6  # DPO on a LoRA of a 7-8B base: the order published DPO recipes use
PREFERENCE_RATE_SMALL = 5e-5  # below 1B parameters (the embedded 135M model): ten times that
ALL_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
DTYPES = ("auto", "float32", "bfloat16", "float16")


class ConfigError(MailvoiceError):
    """A training setting is out of range or unknown."""


@dataclass
class TrainConfig:
    """How one QLoRA run trains. Field docstrings are the documentation of each default."""

    base: str = ""
    """GGUF file or Hugging Face folder of the base model; "" = the model drafting uses."""
    epochs: int = 3
    """Passes over the train split. A few hundred emails carry a voice after 2-3 passes; more overfits."""
    max_steps: int | None = None
    """Stop after this many optimizer steps (None = run every epoch)."""
    batch_size: int = 4
    """Examples per micro-batch on each device."""
    grad_accum: int = 2
    """Micro-batches per optimizer step: the effective batch is batch_size x grad_accum x devices."""
    learning_rate: float = 2e-4
    """Peak learning rate (AdamW); the QLoRA paper's value for 7B-scale models."""
    warmup_steps: int | None = None
    """Linear warmup before the cosine decay; None = 5% of the steps (at least 1)."""
    weight_decay: float = 0.0
    """AdamW weight decay; LoRA's low rank already regularises."""
    max_grad_norm: float = 1.0
    """Gradient clipping: one long odd email must not throw the adapter off."""
    lora_r: int = 16
    """LoRA rank: enough for a writing style; higher ranks learn facts (and memorise emails)."""
    lora_alpha: float = 32.0
    """LoRA scale numerator (the update is scaled by alpha / r); 2 x r is the usual choice."""
    lora_dropout: float = 0.05
    """Dropout on LoRA's input: a little helps with a few hundred examples."""
    target_modules: tuple[str, ...] = ALL_PROJECTIONS
    """Linear layers that get LoRA: every attention and MLP projection, as in the QLoRA paper."""
    max_seq_len: int = 1024
    """Tokens per example; the context is cut first, then the email's tail, never the instruction."""
    examples_probability: float = 0.5
    """Share of training examples shown with the user's similar past emails in the prompt, as drafting shows
    them; the others without, so the adapter drafts well both ways (retrieval-augmented fine-tuning)."""
    min_email_tokens: int = 32
    """An example whose instruction leaves fewer tokens than this for the email is skipped."""
    eval_every: int = 50
    """Steps between evaluations on the validation split (also evaluated at the end)."""
    eval_max_examples: int = 64
    """Validation examples per evaluation: enough for a stable loss, few enough to stay quick."""
    checkpoint_every: int = 50
    """Steps between checkpoints (also one when cancelled); a crash loses at most this many steps."""
    keep_checkpoints: int = 2
    """Older checkpoints are deleted: each holds the optimizer state (2 x the adapter's size)."""
    seed: int = 42
    """Seeds data order, LoRA initialisation and dropout: the same seed gives the same run."""
    gradient_checkpointing: bool = True
    """Recompute activations in the backward pass: ~30% slower, a fraction of the memory. The CPU recipe turns it
    off; preflight turns it back on where a run would not fit without it."""
    group_by_length: bool = True
    """Batch examples of similar length together: less padding, fewer wasted tokens."""
    device: str = "auto"
    """auto | cuda | mps | cpu."""
    compute_dtype: str = "auto"
    """auto = bfloat16 on GPUs that support it, float16 on other GPUs, float32 on CPU."""
    cpu_threads: int | None = None
    """Torch threads on CPU; None = torch's default. On a busy shared machine 1-2 is much faster."""
    parity: bool = True
    """After export, check llama.cpp with the adapter picks the same next tokens as the trained model."""
    parity_examples: int = 8
    """Validation examples the parity check compares on."""
    max_hours: float = 48.0
    """Preflight refuses a run estimated to take longer than this."""
    preference_beta: float = 0.1
    """Preference tuning (DPO, ``train --preference``): how far the tuned adapter may move from the one it
    starts from (the KL penalty's weight); lower lets it move further. 0.1 is the DPO paper's value."""
    preference_learning_rate: float | None = None
    """Preference tuning: peak learning rate. None = 5e-6 for a base of 1B parameters or more and 5e-5 below
    (the small embedded model moves little at 8B rates in the few steps a CPU affords); either is far below
    supervised training's, as DPO starts from an adapter that already writes well."""
    preference_epochs: int = 2
    """Preference tuning: passes over the preference pairs. A few dozen pairs are learned in 1-2 passes; more
    memorises them (the held-out accuracy stops rising while the training loss still falls)."""
    preference_max_steps: int | None = None
    """Preference tuning: stop after this many optimizer steps (None = run every pass)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Free-form notes kept with the config (e.g. what the run was for); not used by training."""

    def __post_init__(self) -> None:
        self.target_modules = tuple(self.target_modules)
        _check(self.epochs >= 1, "epochs must be at least 1")
        _check(self.max_steps is None or self.max_steps >= 1, "max_steps must be at least 1")
        _check(self.batch_size >= 1 and self.grad_accum >= 1, "batch_size and grad_accum must be at least 1")
        _check(0 < self.learning_rate < 1, "learning_rate must be between 0 and 1, e.g. 2e-4")
        _check(self.lora_r >= 1 and self.lora_alpha > 0, "lora_r must be at least 1 and lora_alpha positive")
        _check(0 <= self.lora_dropout < 1, "lora_dropout must be in [0, 1)")
        _check(bool(self.target_modules), "target_modules must name at least one layer, e.g. q_proj,v_proj")
        _check(self.max_seq_len >= 64, "max_seq_len must be at least 64 tokens")
        _check(0 < self.min_email_tokens < self.max_seq_len, "min_email_tokens must be below max_seq_len")
        _check(0 <= self.examples_probability <= 1, "examples_probability must be between 0 and 1")
        _check(self.eval_every >= 1 and self.checkpoint_every >= 1, "eval_every and checkpoint_every must be >= 1")
        _check(self.keep_checkpoints >= 1, "keep_checkpoints must be at least 1")
        _check(self.device in ("auto", "cuda", "mps", "cpu"), "device must be auto, cuda, mps or cpu")
        _check(self.compute_dtype in DTYPES, f"compute_dtype must be one of {', '.join(DTYPES)}")
        _check(self.cpu_threads is None or self.cpu_threads >= 1, "cpu_threads must be at least 1")
        _check(0 < self.preference_beta <= 10, "preference_beta must be above 0 (and at most 10), e.g. 0.1")
        lr = self.preference_learning_rate
        _check(lr is None or 0 < lr < 1, "preference_learning_rate must be between 0 and 1, e.g. 5e-6")
        _check(self.preference_epochs >= 1, "preference_epochs must be at least 1")
        _check(self.preference_max_steps is None or self.preference_max_steps >= 1,
               "preference_max_steps must be at least 1")  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["target_modules"] = list(self.target_modules)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from a dict; unknown keys are an error (a typo must not silently train with a default)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        _check(not unknown, f"unknown training setting(s): {', '.join(unknown)}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise ConfigError(f"bad training setting: {exc}") from exc

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` (None values are ignored: an option not given changes nothing)."""
        return TrainConfig.from_json({**self.to_json(), **{k: v for k, v in changes.items() if v is not None}})

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        try:
            return cls.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read the training config {path} ({exc})") from exc

    def preference_rate(self, parameters: int) -> float:
        """The preference-tuning learning rate for a base of ``parameters``: the setting, else by size."""
        if self.preference_learning_rate is not None:
            return self.preference_learning_rate
        return PREFERENCE_RATE_LARGE if parameters >= 1e9 else PREFERENCE_RATE_SMALL

    def warmup_for(self, total_steps: int) -> int:
        """Warmup steps for a run of ``total_steps``."""
        if self.warmup_steps is not None:
            return min(self.warmup_steps, total_steps)
        return max(1, round(total_steps * 0.05))


@dataclass(frozen=True)
class Duration:
    """How long a run may train, as a person chooses it: a limit on passes and steps over the settings."""

    key: str
    label: str
    epochs: int | None  # None: the settings' passes
    max_steps: int | None  # None: the settings' limit (none by default)
    help: str

    def options(self) -> dict[str, Any]:
        """The changes to the resolved settings, for :meth:`TrainConfig.replace` (None changes nothing)."""
        return {"epochs": self.epochs, "max_steps": self.max_steps}

    def preference_options(self) -> dict[str, Any]:
        """The same limits for a preference-tuning run (``preference_epochs``, ``preference_max_steps``)."""
        return {"preference_epochs": self.epochs, "preference_max_steps": self.max_steps}


QUICK_TEST_STEPS = 10
DURATIONS = {
    d.key: d
    for d in (
        Duration("quick", "Quick test", 1, QUICK_TEST_STEPS,
                 f"{QUICK_TEST_STEPS} steps: checks that training works on this machine and shows its speed; the "
                 "adapter will not write like you yet."),
        Duration("one-pass", "One pass", 1, None,
                 "Every training email once: a first version of your style, in part of the full run's time."),
        Duration("full", "Full", None, None,
                 "Every training email as many times as the settings say (3 passes by default): the adapter to "
                 "draft with."),
    )
}  # fmt: skip
DEFAULT_DURATION = "full"


def duration(key: str) -> Duration:
    """The :data:`DURATIONS` entry ``key``; :class:`ConfigError` naming the choices for any other."""
    if key not in DURATIONS:
        raise ConfigError(f"Training setting: no duration {key!r}; choose one of {', '.join(DURATIONS)}.")
    return DURATIONS[key]


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(f"Training setting: {message}.")


def field_help() -> dict[str, str]:
    """Each field's docstring (for ``--help`` texts and the GUI's tooltips), read from this source file."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(TrainConfig))
    body = tree.body[0].body  # type: ignore[attr-defined]
    helps = {}
    for node, nxt in zip(body, body[1:], strict=False):
        if isinstance(node, ast.AnnAssign) and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant):
            helps[node.target.id] = str(nxt.value.value)  # type: ignore[union-attr]
    return helps


def cosine_with_warmup(step: int, warmup: int, total: int) -> float:
    """LR factor for 0-based ``step``: linear warmup reaching 1 on the last warmup step, then cosine decay.

    Unlike transformers' schedule, the first step does not run at LR 0 and the last not at 0: in a 20-step
    run on a handful of emails every step counts.
    """
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))
