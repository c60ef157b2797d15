"""Export a PEFT LoRA adapter as a llama.cpp LoRA GGUF (what drafting loads with ``lora_path``).

Conventions are llama.cpp's ``convert_lora_to_gguf.py``: metadata ``general.type = "adapter"``,
``adapter.type = "lora"``, ``adapter.lora.alpha``; one pair of tensors per adapted matrix, named after the
base GGUF's tensor plus ``.lora_a`` / ``.lora_b`` (``blk.N.attn_q.weight.lora_a``); ``lora_a`` is [r, in] and
``lora_b`` is [out, r] in numpy order. llama.cpp's converter permutes the rows of Llama's q and k projections
(its RoPE layout differs from Hugging Face's), so ``lora_b`` of q_proj and k_proj gets the same permutation;
``lora_a`` acts on the input side and is unchanged. llama.cpp scales the update by alpha / r, as PEFT does.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from assistant.errors import MailvoiceError

PROJECTIONS = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
# Hugging Face model_type -> llama.cpp architecture, and whether q/k rows are permuted on conversion.
ARCHITECTURES = {
    "llama": ("llama", True),
    "mistral": ("llama", True),
    "qwen2": ("qwen2", False),
    "qwen3": ("qwen3", False),
}
_KEY = re.compile(r"(?:base_model\.model\.)?model\.layers\.(\d+)\.(\w+\.\w+)\.lora_([AB])\.weight")


class ExportError(MailvoiceError):
    """The adapter cannot be written as a llama.cpp GGUF."""


@dataclass
class ExportInfo:
    path: str
    architecture: str
    tensors: int
    rank: int
    alpha: float
    size_bytes: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def permute_rows(weights: np.ndarray, n_head: int, n_head_kv: int | None = None) -> np.ndarray:
    """llama.cpp's HF -> GGUF permutation of q/k projection rows (``LlamaModel.permute``)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (
        weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def gguf_name(key: str) -> str:
    """``base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight`` -> ``blk.3.attn_q.weight.lora_a``."""
    m = _KEY.fullmatch(key)
    if m is None or m.group(2) not in PROJECTIONS:
        raise ExportError(f"The adapter holds {key}, which llama.cpp adapters cannot carry (only projections).")
    return f"blk.{m.group(1)}.{PROJECTIONS[m.group(2)]}.weight.lora_{m.group(3).lower()}"


def lora_tensors(state: dict[str, Any], config: dict[str, Any], permute: bool) -> dict[str, np.ndarray]:
    """GGUF tensor name -> float32 array, from a PEFT state dict and the base's config.json."""
    heads = int(config["num_attention_heads"])
    kv_heads = int(config.get("num_key_value_heads", heads))
    out = {}
    for key, tensor in sorted(state.items()):
        name = gguf_name(key)
        array = tensor.float().numpy() if hasattr(tensor, "numpy") else np.asarray(tensor, dtype=np.float32)
        if permute and name.endswith(".lora_b") and (".attn_q." in name or ".attn_k." in name):
            array = permute_rows(array, heads, heads if ".attn_q." in name else kv_heads)
        out[name] = np.ascontiguousarray(array, dtype=np.float32)
    return out


def export_gguf(
    adapter_dir: Path, base_folder: Path, out: Path, architecture: str | None = None, name: str = ""
) -> ExportInfo:
    """Write ``adapter_dir`` (a PEFT adapter folder) as a llama.cpp LoRA GGUF at ``out``, atomically.

    Args:
        adapter_dir: holds ``adapter_model.safetensors`` and ``adapter_config.json``.
        base_folder: the Hugging Face folder trained on (its ``config.json`` gives heads and architecture).
        out: the GGUF to write.
        architecture: the base GGUF's ``general.architecture`` when known (it must match, or llama.cpp
            refuses the adapter); otherwise derived from config.json's model_type.
    """
    import gguf
    from safetensors.torch import load_file

    try:
        peft_config = json.loads((adapter_dir / "adapter_config.json").read_text())
        base_config = json.loads((base_folder / "config.json").read_text())
        state = load_file(str(adapter_dir / "adapter_model.safetensors"))
    except (OSError, ValueError) as exc:
        raise ExportError(f"Cannot read the adapter in {adapter_dir} ({exc}).") from exc
    model_type = base_config.get("model_type", "")
    if model_type not in ARCHITECTURES:
        raise ExportError(
            f"Exporting adapters for {model_type!r} models is not supported (only {', '.join(sorted(ARCHITECTURES))})."
        )
    arch, permute = ARCHITECTURES[model_type]
    arch = architecture or arch
    if peft_config.get("use_rslora") or peft_config.get("use_dora"):
        raise ExportError("rsLoRA and DoRA adapters have no llama.cpp equivalent; train a plain LoRA.")
    tensors = lora_tensors(state, base_config, permute)
    ranks = {a.shape[0] for n, a in tensors.items() if n.endswith(".lora_a")}
    if len(ranks) != 1:
        raise ExportError(f"The adapter mixes ranks {sorted(ranks)}; llama.cpp needs one rank.")
    alpha = float(peft_config["lora_alpha"])
    tmp = out.with_name(out.name + ".tmp")
    writer = gguf.GGUFWriter(tmp, arch)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
    if name:
        writer.add_name(name)
    for tensor_name, array in tensors.items():
        writer.add_tensor(tensor_name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tmp.replace(out)
    return ExportInfo(str(out), arch, len(tensors), ranks.pop(), alpha, out.stat().st_size)


def save_adapter_config(path: Path, **sections: Any) -> None:
    """``adapter_config.json`` beside the GGUF: the resolved training config, base identity, metrics...

    Everything needed to know what an adapter is and to train it again, readable without the database.
    """
    path.write_text(json.dumps(sections, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
