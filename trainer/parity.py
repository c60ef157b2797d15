"""Parity check: llama.cpp with the exported GGUF adapter must pick the same next tokens as the PEFT model.

Both sides read the same token ids (the validation examples in the chat template, tokenized once), and the
top-1 next-token choice is compared at every email position. The reference is the PEFT adapter on the base
dequantized from the same GGUF llama.cpp runs, in float32, so what is measured is the export (names, shapes,
q/k permutation, scale), not the quantization: llama.cpp still computes with the Q4 blocks and 8-bit
activations, which is why agreement is high but not 100%. Two controls come with it: the same comparison
without the adapter (what quantized arithmetic alone costs), and how many choices the adapter changes in
llama.cpp (an adapter that changes nothing would pass the check trivially).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trainer.data import IGNORE, Example, encode, system_prompt

THRESHOLD = 0.95
DECISIVE = 1.0  # logits between the reference's first and second choice for a position to count as decisive


@dataclass
class ParityReport:
    agreement: float  # llama.cpp + adapter vs PEFT on the float32 base: the number the check is about
    base_agreement: float  # llama.cpp vs the float32 base, both without the adapter (the quantization floor)
    adapter_changed: float  # share of positions where the adapter changes llama.cpp's top-1 choice
    positions: int
    examples: int
    decisive_agreement: float = 1.0  # the same, where the reference's top-1 leads by >= DECISIVE logits
    nf4_agreement: float | None = None  # llama.cpp + adapter vs PEFT on the NF4 base it was trained on

    @property
    def passed(self) -> bool:
        """At least 95%; or, on prompts where quantized arithmetic alone flips more choices than that, no
        worse than llama.cpp without the adapter (the export cannot be blamed for those)."""
        return self.agreement >= THRESHOLD or self.agreement >= self.base_agreement

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed, "threshold": THRESHOLD}


Sequences = list[tuple[list[int], list[int]]]


def _sequences(tokenizer: Any, examples: list[Example], max_examples: int, max_len: int) -> Sequences:
    """(token ids, positions whose next token is an email token) per example."""
    system, out = system_prompt(), []
    for example in examples:
        encoded = encode(tokenizer, example, system, max_len)
        if encoded is None:
            continue
        positions = [p for p in range(len(encoded) - 1) if encoded.labels[p + 1] != IGNORE]
        out.append((encoded.input_ids, positions))
        if len(out) == max_examples:
            break
    return out


def _torch_top1(model: Any, sequences: Sequences, margins: list[np.ndarray] | None = None) -> list[np.ndarray]:
    """Top-1 token per position; with ``margins``, also appends how far each top-1 leads the runner-up."""
    import torch

    tops = []
    with torch.no_grad():
        for ids, positions in sequences:
            logits = model(input_ids=torch.tensor([ids])).logits[0][positions]
            best = logits.topk(2, dim=-1).values
            tops.append(logits.argmax(-1).numpy())
            if margins is not None:
                margins.append((best[:, 0] - best[:, 1]).numpy())
    return tops


@contextlib.contextmanager
def _llama(model_path: Path, lora_path: Path | None, n_ctx: int, threads: int | None) -> Iterator[Any]:
    from llama_cpp import Llama

    threads = threads or os.cpu_count()  # for prompt reading too: on a busy machine extra threads only spin
    llm = Llama(
        str(model_path),
        lora_path=str(lora_path) if lora_path else None,
        logits_all=True,
        n_ctx=n_ctx,
        n_batch=n_ctx,
        n_threads=threads,
        n_threads_batch=threads,
        n_gpu_layers=0,
        verbose=False,
    )
    try:
        yield llm
    finally:
        llm.close()


def _llama_top1(llm: Any, sequences: Sequences) -> list[np.ndarray]:
    tops = []
    for ids, positions in sequences:
        llm.reset()
        llm.eval(ids)
        tops.append(np.asarray(llm.scores[: len(ids)])[positions].argmax(-1))
    return tops


def _agree(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    same = sum(int((x == y).sum()) for x, y in zip(a, b, strict=True))
    return same / max(1, sum(len(x) for x in a))


def _decisive(a: list[np.ndarray], b: list[np.ndarray], margins: list[np.ndarray]) -> tuple[list, list]:
    """Only the positions where the reference is sure: near-ties flip on rounding alone, whatever the export."""
    keep = [m >= DECISIVE for m in margins]
    return [x[k] for x, k in zip(a, keep, strict=True)], [y[k] for y, k in zip(b, keep, strict=True)]


PARITY_ROOM = 2**29
"""Memory the check takes beyond the float32 base and the GGUF: llama.cpp's context and both sides' logits."""


def too_big(gguf_base: Path, available: int) -> str | None:
    """Why the check cannot run with ``available`` bytes of memory free (its float32 reference of the base, the
    GGUF llama.cpp reads and some room), or None when it can. An 8B base needs over 37 GB: more than many machines
    that train it on a GPU have free."""
    from trainer.shapes import shape_of

    need = shape_of(gguf_base).parameters * 4 + gguf_base.stat().st_size + PARITY_ROOM
    if need <= available:
        return None
    return (
        f"Skipped the llama.cpp check of the adapter: it compares with the base in full precision, which needs "
        f"~{need / 1e9:.1f} GB of memory, and {available / 1e9:.1f} GB is free. The adapter is exported and "
        "ready; the check only confirms that llama.cpp drafts as the trained model does."
    )


def check(
    gguf_base: Path,
    adapter_gguf: Path,
    base_folder: Path,
    adapter_dir: Path,
    examples: list[Example],
    max_examples: int = 8,
    max_len: int = 512,
    threads: int | None = None,
    nf4_cache: Path | None = None,
) -> ParityReport:
    """Compare next-token choices of llama.cpp (base GGUF + adapter GGUF) and PEFT (float32 base + adapter).

    Args:
        examples: prompts to compare on (validation examples; the train split works too).
        nf4_cache: also compare against PEFT on the NF4 base (the cache folder of :func:`load_quantized`).
    """
    import torch
    from peft import PeftModel

    from trainer.base_model import load_quantized, load_reference, load_tokenizer, peft_quietly

    if threads:
        torch.set_num_threads(threads)
    sequences = _sequences(load_tokenizer(base_folder), examples, max_examples, max_len)
    if not sequences:
        raise ValueError("no example fits for the parity check")
    n_ctx = max(len(ids) for ids, _ in sequences)
    with peft_quietly():
        model = PeftModel.from_pretrained(load_reference(base_folder), adapter_dir).eval()
    margins: list[np.ndarray] = []
    reference = _torch_top1(model, sequences, margins)
    with model.disable_adapter():
        reference_base = _torch_top1(model, sequences)
    del model
    with _llama(gguf_base, adapter_gguf, n_ctx, threads) as llm:
        tuned = _llama_top1(llm, sequences)
    with _llama(gguf_base, None, n_ctx, threads) as llm:
        plain = _llama_top1(llm, sequences)
    nf4 = None
    if nf4_cache is not None:
        quantized = load_quantized(base_folder, "cpu", torch.float32, nf4_cache)
        with peft_quietly():
            nf4_model = PeftModel.from_pretrained(quantized, adapter_dir).eval()
        nf4 = _agree(tuned, _torch_top1(nf4_model, sequences))
    return ParityReport(
        agreement=_agree(tuned, reference),
        base_agreement=_agree(plain, reference_base),
        adapter_changed=1 - _agree(tuned, plain),
        decisive_agreement=_agree(*_decisive(tuned, reference, margins)),
        positions=sum(len(p) for _, p in sequences),
        examples=len(sequences),
        nf4_agreement=nf4,
    )
