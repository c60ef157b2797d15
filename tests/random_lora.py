"""A stand-in LoRA adapter for a GGUF base: random values of a chosen rank on chosen projections, for the merge
tests and the drafting benchmark (what an adapter costs at draft time depends on its rank and targets, not on
its values)."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

PROJECTIONS = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")


def random_adapter(
    base: str | Path,
    out: str | Path,
    rank: int = 16,
    strength: float = 0.1,
    seed: int = 0,
    targets: tuple[str, ...] = PROJECTIONS,
) -> Path:
    """A LoRA adapter GGUF with random values on the ``targets`` of ``base``.

    What an adapter costs at draft time depends on its rank and targets, not on its values; ``strength`` is
    the size of each update relative to the weight it changes (Frobenius norms), so that it changes some of
    the model's choices without wrecking it. alpha = 2 * rank, as training's defaults.
    """
    rng = np.random.default_rng(seed)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    reader = gguf.GGUFReader(base)
    writer = gguf.GGUFWriter(out, reader.get_field("general.architecture").contents())
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, 2.0 * rank)
    for tensor in reader.tensors:
        if tensor.name.split(".")[-2] not in targets or not tensor.name.startswith("blk."):
            continue
        rows, cols = (int(n) for n in reversed(tensor.shape.tolist()))
        sample = gguf.quants.dequantize(tensor.data[:64].view(np.ndarray), tensor.tensor_type)
        norm = float(np.linalg.norm(sample)) * (rows / len(sample)) ** 0.5
        a = rng.standard_normal((rank, cols), dtype=np.float32)
        b = rng.standard_normal((rows, rank), dtype=np.float32)
        update = float(np.sqrt(np.trace((b.T @ b) @ (a @ a.T))))  # |B A|, without forming B A
        b *= strength * norm / (2.0 * update)  # llama.cpp scales by alpha / r = 2
        writer.add_tensor(f"{tensor.name}.lora_a", a)
        writer.add_tensor(f"{tensor.name}.lora_b", b)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return Path(out)
