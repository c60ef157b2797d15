"""Architecture numbers of a base model (layers, widths, heads, vocabulary, parameters), read from a GGUF's
metadata or a Hugging Face config.json, and the shapes of common bases (for preflight's suggestions and the
benchmark's random-weight models).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from assistant.errors import MailvoiceError

HEADER_BYTES = 8 << 20  # the GGUF header (metadata + vocabulary + tensor index) fits in this for common models


class BaseModelError(MailvoiceError):
    """The base model is missing, unreadable, or of a kind training cannot use."""


@dataclass(frozen=True)
class ModelShape:
    """The architecture numbers preflight needs, read from GGUF metadata or config.json."""

    name: str
    architecture: str
    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    vocab: int
    parameters: int
    tied_embeddings: bool = False
    context_length: int = 0

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


def shape_of(path: str | Path) -> ModelShape:
    """Architecture numbers of a GGUF (from its metadata) or a Hugging Face folder (from config.json)."""
    path = Path(path).expanduser()
    if path.is_dir():
        try:
            c = json.loads((path / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BaseModelError(f"Cannot read {path / 'config.json'} ({exc}).") from exc
        c = c.get("text_config", c)
        layers, hidden, inter = c["num_hidden_layers"], c["hidden_size"], c["intermediate_size"]
        heads, vocab = c["num_attention_heads"], c["vocab_size"]
        kv, tied = c.get("num_key_value_heads", heads), bool(c.get("tie_word_embeddings", False))
        per_layer = 2 * hidden * hidden + 2 * hidden * (hidden * kv // heads) + 3 * hidden * inter
        params = layers * per_layer + vocab * hidden * (1 if tied else 2)
        return ModelShape(
            path.name,
            c.get("model_type", "?"),
            layers,
            hidden,
            inter,
            heads,
            kv,
            vocab,
            params,
            tied,
            int(c.get("max_position_embeddings", 0)),
        )
    from assistant.gguf import ModelError, read_gguf_header

    try:
        header = read_gguf_header(path)
    except ModelError as exc:
        raise BaseModelError(str(exc)) from exc
    m = header.metadata
    arch = str(m.get("general.architecture", "?"))
    try:
        heads = int(m[f"{arch}.attention.head_count"])
        return ModelShape(
            name=str(m.get("general.name") or path.stem),
            architecture=arch,
            layers=int(m[f"{arch}.block_count"]),
            hidden=int(m[f"{arch}.embedding_length"]),
            intermediate=int(m[f"{arch}.feed_forward_length"]),
            heads=heads,
            kv_heads=int(m.get(f"{arch}.attention.head_count_kv", heads)),
            vocab=int(m.get(f"{arch}.vocab_size") or m.get("tokenizer.ggml.tokens") or 0),
            parameters=header.parameter_count,
            tied_embeddings=header.tensor_count > 0 and not _has_output_tensor(path),
            context_length=int(m.get(f"{arch}.context_length", 0)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise BaseModelError(f"{path} lacks the {arch} architecture numbers training needs ({exc}).") from exc


def _has_output_tensor(path: Path) -> bool:
    """Whether the GGUF has its own output (lm_head) matrix; without one it reuses the embeddings."""
    with path.open("rb") as f:
        return b"\x0d\x00\x00\x00\x00\x00\x00\x00output.weight" in f.read(HEADER_BYTES)


# Known shapes: the bench's random-weight models and the smaller bases preflight can suggest.
SHAPES = {
    "smollm2-135m": ModelShape("SmolLM2-135M-Instruct", "llama", 30, 576, 1536, 9, 3, 49152, 134_515_008, True),
    "smollm2-360m": ModelShape("SmolLM2-360M-Instruct", "llama", 32, 960, 2560, 15, 5, 49152, 361_821_120, True),
    "qwen2.5-0.5b": ModelShape("Qwen2.5-0.5B-Instruct", "qwen2", 24, 896, 4864, 14, 2, 151936, 494_032_768, True),
    "llama3.2-1b": ModelShape("Llama-3.2-1B-Instruct", "llama", 16, 2048, 8192, 32, 8, 128256, 1_235_814_400, True),
    "llama3.2-3b": ModelShape("Llama-3.2-3B-Instruct", "llama", 28, 3072, 8192, 24, 8, 128256, 3_212_749_824, True),
    "llama3-8b": ModelShape("Meta-Llama-3-8B-Instruct", "llama", 32, 4096, 14336, 32, 8, 128256, 8_030_261_248),
}
