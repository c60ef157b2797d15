"""Export to a llama.cpp LoRA GGUF: names, shapes, metadata, and the q/k row permutation (fast, synthetic)."""

from __future__ import annotations

import json

import gguf
import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from assistant.drafting.models import check_adapter
from assistant.gguf import read_gguf_header
from trainer.export import ExportError, export_gguf, gguf_name, permute_rows

HEADS, KV_HEADS, HIDDEN, R = 4, 2, 16, 2
KV_DIM = HIDDEN // HEADS * KV_HEADS


def _peft_adapter(folder, layers=2, targets=("q_proj", "k_proj", "v_proj", "down_proj"), **config):
    """A PEFT adapter folder for a tiny Llama, with distinct values in every tensor."""
    folder.mkdir()
    out_dims = {"q_proj": HIDDEN, "k_proj": KV_DIM, "v_proj": KV_DIM, "down_proj": HIDDEN}
    in_dims = {"q_proj": HIDDEN, "k_proj": HIDDEN, "v_proj": HIDDEN, "down_proj": 24}
    state, g = {}, torch.Generator().manual_seed(0)
    for layer in range(layers):
        for t in targets:
            part = "mlp" if t == "down_proj" else "self_attn"
            key = f"base_model.model.model.layers.{layer}.{part}.{t}"
            state[f"{key}.lora_A.weight"] = torch.randn(R, in_dims[t], generator=g)
            state[f"{key}.lora_B.weight"] = torch.randn(out_dims[t], R, generator=g)
    save_file(state, str(folder / "adapter_model.safetensors"))
    (folder / "adapter_config.json").write_text(json.dumps({"r": R, "lora_alpha": 8, **config}))
    return state


def _base(folder, model_type="llama"):
    folder.mkdir()
    (folder / "config.json").write_text(
        json.dumps(
            {
                "model_type": model_type,
                "num_attention_heads": HEADS,
                "num_key_value_heads": KV_HEADS,
                "hidden_size": HIDDEN,
                "num_hidden_layers": 2,
                "intermediate_size": 24,
                "vocab_size": 32,
            }
        )
    )
    return folder


def test_names_follow_llama_cpp():
    assert gguf_name("base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight") == "blk.3.attn_q.weight.lora_a"
    assert gguf_name("base_model.model.model.layers.0.mlp.down_proj.lora_B.weight") == "blk.0.ffn_down.weight.lora_b"
    assert gguf_name("model.layers.1.self_attn.o_proj.lora_B.weight") == "blk.1.attn_output.weight.lora_b"
    with pytest.raises(ExportError, match="only projections"):
        gguf_name("base_model.model.lm_head.lora_A.weight")


def test_permutation_is_the_inverse_of_what_transformers_undoes_when_reading_a_gguf():
    from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

    undo = LlamaTensorProcessor(config={})._reverse_permute_weights
    q = np.arange(HIDDEN * 3, dtype=np.float32).reshape(HIDDEN, 3)
    k = np.arange(KV_DIM * 3, dtype=np.float32).reshape(KV_DIM, 3)
    assert np.array_equal(undo(permute_rows(q, HEADS, HEADS), HEADS, HEADS), q)
    assert np.array_equal(undo(permute_rows(k, HEADS, KV_HEADS), HEADS, KV_HEADS), k)
    assert not np.array_equal(permute_rows(q, HEADS, HEADS), q)


def test_export_writes_a_lora_gguf_llama_cpp_can_read(tmp_path):
    state = _peft_adapter(tmp_path / "peft")
    info = export_gguf(tmp_path / "peft", _base(tmp_path / "base"), tmp_path / "a.gguf", name="style-test")
    assert (info.architecture, info.tensors, info.rank, info.alpha) == ("llama", 16, R, 8.0)
    meta = read_gguf_header(tmp_path / "a.gguf").metadata
    assert meta["general.type"] == "adapter" and meta["adapter.type"] == "lora"
    assert meta["adapter.lora.alpha"] == 8.0 and meta["general.architecture"] == "llama"
    check_adapter(tmp_path / "a.gguf")  # what drafting checks before loading it
    tensors = {t.name: t for t in gguf.GGUFReader(tmp_path / "a.gguf").tensors}
    a = tensors["blk.1.attn_v.weight.lora_a"]
    assert list(a.shape) == [HIDDEN, R]  # ggml order: [in, r] is numpy's [r, in]
    assert np.array_equal(a.data, state["base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight"].numpy())
    b_q = tensors["blk.0.attn_q.weight.lora_b"].data
    hf_q = state["base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"].numpy()
    assert np.array_equal(b_q, permute_rows(hf_q, HEADS, HEADS))  # q/k rows in llama.cpp's RoPE layout
    b_k = tensors["blk.0.attn_k.weight.lora_b"].data
    assert np.array_equal(
        b_k,
        permute_rows(state["base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight"].numpy(), HEADS, KV_HEADS),
    )
    a_q = tensors["blk.0.attn_q.weight.lora_a"].data  # the input side is not permuted
    assert np.array_equal(a_q, state["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"].numpy())
    assert not (tmp_path / "a.gguf.tmp").exists()


def test_qwen2_keeps_rows_as_they_are(tmp_path):
    state = _peft_adapter(tmp_path / "peft", targets=("q_proj",))
    export_gguf(tmp_path / "peft", _base(tmp_path / "base", "qwen2"), tmp_path / "a.gguf")
    tensors = {t.name: t for t in gguf.GGUFReader(tmp_path / "a.gguf").tensors}
    hf_q = state["base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"].numpy()
    assert np.array_equal(tensors["blk.0.attn_q.weight.lora_b"].data, hf_q)
    assert read_gguf_header(tmp_path / "a.gguf").metadata["general.architecture"] == "qwen2"


@pytest.mark.parametrize(
    ("config", "model_type", "message"),
    [
        ({"use_rslora": True}, "llama", "rsLoRA"),
        ({}, "gpt2", "not supported"),
    ],
)
def test_adapters_llama_cpp_cannot_run_are_refused(tmp_path, config, model_type, message):
    _peft_adapter(tmp_path / "peft", **config)
    with pytest.raises(ExportError, match=message):
        export_gguf(tmp_path / "peft", _base(tmp_path / "base", model_type), tmp_path / "a.gguf")


def test_a_missing_adapter_is_a_clear_error(tmp_path):
    (tmp_path / "peft").mkdir()
    with pytest.raises(ExportError, match="Cannot read the adapter"):
        export_gguf(tmp_path / "peft", _base(tmp_path / "base"), tmp_path / "a.gguf")
