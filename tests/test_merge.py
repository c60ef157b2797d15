"""Merging an adapter into its base GGUF: the arithmetic, the copy, the refusals, the command; and, on the
embedded model, that llama.cpp on the merged model picks what it picks with the unmerged adapter."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import gguf
import numpy as np
import pytest
from click.testing import CliRunner
from gguf import GGMLQuantizationType as Q

from assistant.drafting.models import check_model, embedded_model_path, engine_settings
from assistant.gguf import ModelError, read_gguf_header
from trainer import merge as merge_module
from trainer.base_model import identify
from trainer.merge import MergeError, merge_adapter

HIDDEN, KV, FF, R, ALPHA = 64, 32, 96, 4, 16.0
TEMPLATE = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
# name -> (numpy shape [rows, cols], type) of the tiny base; the adapter touches q, k and down.
TENSORS = {
    "token_embd.weight": ((40, HIDDEN), Q.Q8_0),
    "blk.0.attn_norm.weight": ((HIDDEN,), Q.F32),
    "blk.0.attn_q.weight": ((HIDDEN, HIDDEN), Q.Q4_1),
    "blk.0.attn_k.weight": ((KV, HIDDEN), Q.Q4_1),
    "blk.0.attn_v.weight": ((KV, HIDDEN), Q.Q4_1),
    "blk.0.ffn_down.weight": ((HIDDEN, FF), Q.Q8_0),
    "blk.0.ffn_up.weight": ((FF, 256), Q.Q6_K),  # a K-quant: gguf.quants reads it but cannot write it
}
TOUCHED = ("blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.0.ffn_down.weight", "blk.0.ffn_up.weight")


def _q6_k(rows: int, cols: int, rng: np.random.Generator) -> np.ndarray:
    """Q6_K blocks with random quants and a sane scale (no Python quantizer exists to make them)."""
    blocks = rng.integers(0, 256, size=(rows * cols // 256, 210), dtype=np.uint8)
    blocks[:, 192:208] = rng.integers(1, 16, size=(len(blocks), 16), dtype=np.int8).view(np.uint8)
    blocks[:, 208:210] = np.full(len(blocks), 0.001, dtype=np.float16).view(np.uint8).reshape(-1, 2)
    return blocks.reshape(rows, cols // 256 * 210)


def tiny_base(path: Path, hidden: int = HIDDEN, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_name("Tiny Test")
    writer.add_file_type(int(gguf.LlamaFileType.MOSTLY_Q4_1))
    writer.add_block_count(1)
    writer.add_embedding_length(hidden)
    writer.add_chat_template(TEMPLATE)
    writer.add_token_list([f"t{i}" for i in range(40)])
    writer.add_token_scores([float(i) for i in range(40)])
    for name, (shape, qtype) in TENSORS.items():
        shape = tuple(hidden if n == HIDDEN else n for n in shape)
        if qtype == Q.Q6_K:
            writer.add_tensor(name, _q6_k(*shape, rng), raw_dtype=qtype)
            continue
        values = rng.standard_normal(shape, dtype=np.float32) * 0.05
        writer.add_tensor(name, gguf.quants.quantize(values, qtype), raw_dtype=None if qtype == Q.F32 else qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def tiny_adapter(folder: Path, base: Path | None = None, targets=TOUCHED, seed: int = 1) -> Path:
    """A LoRA GGUF for the tiny base in ``folder/adapter.gguf``; with ``base``, its identity beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    shapes = {t.name: tuple(int(n) for n in reversed(t.shape.tolist())) for t in gguf.GGUFReader(base).tensors}
    writer = gguf.GGUFWriter(folder / "adapter.gguf", "llama")
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, ALPHA)
    for name in targets:
        rows, cols = shapes[name]
        writer.add_tensor(f"{name}.lora_a", rng.standard_normal((R, cols), dtype=np.float32) * 0.1)
        writer.add_tensor(f"{name}.lora_b", rng.standard_normal((rows, R), dtype=np.float32) * 0.1)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    (folder / "adapter_config.json").write_text(json.dumps({"base": identify(base).to_json()}))
    return folder / "adapter.gguf"


@pytest.fixture
def files(tmp_path):
    base = tiny_base(tmp_path / "tiny.gguf")
    return base, tiny_adapter(tmp_path / "adapters" / "style-1", base)


def tensors(path: Path) -> dict:
    return {t.name: t for t in gguf.GGUFReader(path).tensors}


def values(tensor) -> np.ndarray:
    return gguf.quants.dequantize(np.asarray(tensor.data), tensor.tensor_type)


def expected_merge(base: Path, adapter: Path, scale: float) -> dict[str, np.ndarray]:
    lora, out = tensors(adapter), {}
    for name, tensor in tensors(base).items():
        if f"{name}.lora_a" in lora:
            a, b = np.asarray(lora[f"{name}.lora_a"].data), np.asarray(lora[f"{name}.lora_b"].data)
            out[name] = values(tensor) + scale * (b @ a)
    return out


def test_merged_weights_are_w_plus_scaled_update_and_the_rest_is_copied_byte_for_byte(files, tmp_path):
    base, adapter = files
    events = []
    info = merge_adapter(base, adapter, tmp_path / "merged.gguf", "f16", lora_scale=0.5, progress=events.append)
    assert info.scale == 0.5 * ALPHA / R and (info.merged, info.copied) == (4, 3)
    assert info.written_types == {"F16": 4}
    got, before = tensors(tmp_path / "merged.gguf"), tensors(base)
    assert list(got) == list(before)  # same tensors, same order
    want = expected_merge(base, adapter, 0.5 * ALPHA / R)
    for name, tensor in got.items():
        if name in want:
            assert tensor.tensor_type == Q.F16
            assert np.allclose(values(tensor), want[name], atol=2e-3, rtol=1e-3), name
            assert not np.allclose(values(tensor), values(before[name]), atol=1e-3)  # the update is there
        else:
            assert tensor.tensor_type == before[name].tensor_type
            assert bytes(np.asarray(tensor.data).data) == bytes(np.asarray(before[name].data).data), name
    assert events[-1]["fraction"] == 1.0 and all(e["phase"] == "merge" for e in events)


def test_metadata_is_kept_and_the_merge_recorded(files, tmp_path):
    base, adapter = files
    merge_adapter(base, adapter, tmp_path / "merged.gguf", "q8_0", adapter_name="style-1")
    old, new = gguf.GGUFReader(base).fields, gguf.GGUFReader(tmp_path / "merged.gguf").fields
    changed = {"general.name", "general.file_type"}
    for key, field in old.items():
        if not key.startswith("GGUF.") and key not in changed:
            assert new[key].contents() == field.contents(), key
    assert new["general.name"].contents() == "Tiny Test + style-1"
    assert new["general.file_type"].contents() == gguf.LlamaFileType.MOSTLY_Q8_0  # most weights are Q8_0 now
    assert new["mailvoice.merged.adapter"].contents() == "style-1"
    assert new["tokenizer.chat_template"].contents() == TEMPLATE
    check_model(tmp_path / "merged.gguf")  # what drafting checks: a chat model, not an adapter


def test_same_type_requantizes_what_gguf_can_write_and_q8_0_for_the_rest(files, tmp_path):
    base, adapter = files
    info = merge_adapter(base, adapter, tmp_path / "merged.gguf", "same")
    assert info.written_types == {"Q4_1": 2, "Q8_0": 2}  # q, k stay Q4_1; down is Q8_0; Q6_K up -> Q8_0
    got = tensors(tmp_path / "merged.gguf")
    assert got["blk.0.attn_q.weight"].tensor_type == Q.Q4_1 and got["blk.0.ffn_up.weight"].tensor_type == Q.Q8_0
    want = expected_merge(base, adapter, ALPHA / R)
    step = np.ptp(want["blk.0.attn_q.weight"], axis=1, keepdims=True) / 15  # one 4-bit step, per row at most
    assert np.all(np.abs(values(got["blk.0.attn_q.weight"]) - want["blk.0.attn_q.weight"]) <= step)
    up = want["blk.0.ffn_up.weight"]
    assert np.allclose(values(got["blk.0.ffn_up.weight"]), up, atol=np.abs(up).max() / 100)
    # The file type names the type holding most weights: the Q6_K tensor (the largest) is Q8_0 now.
    assert read_gguf_header(tmp_path / "merged.gguf").metadata["general.file_type"] == gguf.LlamaFileType.MOSTLY_Q8_0


def test_an_adapter_of_another_base_is_refused(files, tmp_path):
    base, adapter = files
    other = tiny_base(tmp_path / "other.gguf", seed=9)  # same shapes, other weights
    with pytest.raises(MergeError, match="trained on tiny, not on other.gguf"):
        merge_adapter(other, adapter, tmp_path / "merged.gguf")
    # Nothing recorded (an adapter from elsewhere): shapes still tell a different model apart.
    wide = tiny_base(tmp_path / "wide.gguf", hidden=128)
    (adapter.parent / "adapter_config.json").unlink()
    with pytest.raises(MergeError, match="trained on another model"):
        merge_adapter(wide, adapter, tmp_path / "merged.gguf")
    assert not (tmp_path / "merged.gguf").exists()


def test_files_that_are_not_gguf_or_swapped_are_refused(files, tmp_path):
    base, adapter = files
    text = tmp_path / "notes.gguf"
    text.write_text("not a model")
    with pytest.raises(ModelError, match="not a GGUF"):
        merge_adapter(text, adapter, tmp_path / "merged.gguf")
    with pytest.raises(ModelError, match="not a GGUF"):
        merge_adapter(base, text, tmp_path / "merged.gguf")
    with pytest.raises(ModelError, match="is a LoRA adapter, not a model"):
        merge_adapter(adapter, adapter, tmp_path / "merged.gguf")
    with pytest.raises(MergeError, match="Unknown type"):
        merge_adapter(base, adapter, tmp_path / "merged.gguf", "q4_k")


def test_the_base_is_never_overwritten_and_a_failed_write_leaves_nothing(files, tmp_path, monkeypatch):
    base, adapter = files
    original = base.read_bytes()
    for out in (base, tmp_path / "." / base.name):
        with pytest.raises(MergeError, match="is the base model itself"):
            merge_adapter(base, adapter, out, overwrite=True)
    (tmp_path / "link.gguf").hardlink_to(base)
    with pytest.raises(MergeError, match="is the base model itself"):
        merge_adapter(base, adapter, tmp_path / "link.gguf", overwrite=True)
    (tmp_path / "taken.gguf").write_bytes(b"mine")
    with pytest.raises(MergeError, match="already exists"):
        merge_adapter(base, adapter, tmp_path / "taken.gguf")
    assert (tmp_path / "taken.gguf").read_bytes() == b"mine" and base.read_bytes() == original

    def stop(event):
        if event["fraction"] > 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        merge_adapter(base, adapter, tmp_path / "out" / "merged.gguf", progress=stop)
    assert list((tmp_path / "out").iterdir()) == []  # no half-written model, no temporary file

    class Usage:
        free = 1 << 20

    monkeypatch.setattr(merge_module.shutil, "disk_usage", lambda _path: Usage())
    with pytest.raises(MergeError, match=r"needs 0\.1 GB of disk.*0\.0 GB free"):
        merge_adapter(base, adapter, tmp_path / "merged.gguf")
    assert not (tmp_path / "merged.gguf").exists()


def _cli():
    import click

    from assistant.cli import merge, train

    return click.Group(commands={c.name: c for c in merge.COMMANDS + train.COMMANDS})


def test_command_merges_a_registered_adapter_and_drafting_uses_it_without_the_adapter(files, db, data_home):
    from assistant.store.adapters import register, use_adapter

    base, adapter = files
    folder = data_home / "adapters" / "style-1"
    shutil.copytree(adapter.parent, folder)
    register(db, data_home, "style-1", folder / "adapter.gguf", identify(base).to_json(), {}, {}, data_home)
    use_adapter(db, "style-1")
    result = CliRunner().invoke(_cli(), ["merge", "style-1", "--use", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["adapter"] == "style-1" and out["in_use"] and out["type"] == "q8_0" and out["merged"] == 4
    assert out["path"] == str(folder / "merged-q8_0.gguf") and Path(out["path"]).is_file()
    settings, name = engine_settings(db)
    assert settings.model_path == out["path"] and (settings.lora_path, name) == (None, None)
    settings, name = engine_settings(db, adapter="style-1")  # asked for by name: it is in the model already
    assert settings.lora_path is None and name is None
    settings, name = engine_settings(db, model=str(base), adapter="style-1")  # on the base it still applies
    assert name == "style-1" and settings.lora_path == str(folder / "adapter.gguf")
    again = CliRunner().invoke(_cli(), ["merge", "style-1", "--no-use", "--type", "f16"])
    assert again.exit_code == 0 and "merged-f16.gguf" in again.stdout and "model " in again.stdout


def test_command_errors_are_one_line_with_what_to_do(files, db, data_home, tmp_path):
    from assistant.store.adapters import register

    base, adapter = files
    other = tiny_base(tmp_path / "other.gguf", seed=9)
    register(db, data_home, "style-1", adapter, identify(base).to_json(), {}, {}, data_home)
    cases = [
        (["merge", "nope"], "No adapter named 'nope'"),
        (["merge", "none"], "Name the adapter to merge"),
        (["merge", "style-1", "--base", str(other)], "trained on"),
        (["merge", str(adapter), "--base", str(base), "-o", str(base)], "is the base model itself"),
        (["merge", str(tmp_path / "gone.gguf")], "does not exist"),
    ]
    for args, message in cases:
        result = CliRunner().invoke(_cli(), args)
        assert result.exit_code == 1, (args, result.output)
        assert message in result.stderr and result.stderr.count("\n") == 1, result.stderr
    base.unlink()
    result = CliRunner().invoke(_cli(), ["merge", "style-1"])
    assert result.exit_code == 1 and "--base" in result.stderr


# --- the embedded model ------------------------------------------------------------------------------------

TEXTS = [
    "Hey Sam!\n\nThe report is late, sorry about that. I will send it on Monday with the new numbers.\n\nZed",
    "Dear Priya, thank you so much for lunch yesterday. It was lovely to catch up and hear about the new job.",
    "Hi team, a quick reminder that the budget draft is due on Friday. Please send me your numbers by Thursday.",
    "Write a short email to Tom asking for the invoice for the website work, and thank him for the fast work.",
    "Hello Grace, could we move our review to next Tuesday afternoon? Monday is full of interviews for me.",
]


def _logits(model: Path, lora: Path | None, sequences: list[list[int]]) -> np.ndarray:
    from trainer.parity import _llama

    rows = []
    with _llama(model, lora, 128, None) as llm:
        for ids in sequences:
            llm.reset()
            llm.eval(ids)
            rows.append(np.asarray(llm.scores[: len(ids) - 1]).copy())  # each position's next-token scores
    return np.concatenate(rows)


@pytest.mark.slow
def test_merged_model_chooses_what_the_unmerged_adapter_chooses(tmp_path):
    from llama_cpp import Llama
    from random_lora import random_adapter

    from trainer.parity import DECISIVE

    base = embedded_model_path()
    # q and k (their rows are in llama.cpp's RoPE order), v and down (the widest input): half the work of all
    # seven projections, the same code path.
    targets = ("attn_q", "attn_k", "attn_v", "ffn_down")
    adapter = random_adapter(base, tmp_path / "adapter.gguf", rank=8, strength=0.05, targets=targets)
    info = merge_adapter(base, adapter, tmp_path / "merged.gguf", "q8_0", expected_base={})  # the default type
    assert info.merged == 30 * 4 and info.scale == 2.0
    vocab = Llama(str(base), vocab_only=True, verbose=False)
    sequences = [vocab.tokenize(text.encode(), add_bos=True) for text in TEXTS]
    vocab.close()
    plain, lora = _logits(base, None, sequences), _logits(base, adapter, sequences)
    merged = _logits(tmp_path / "merged.gguf", None, sequences)
    top_plain, top_lora, top_merged = plain.argmax(-1), lora.argmax(-1), merged.argmax(-1)
    ranked = np.sort(lora, axis=-1)
    decisive = ranked[:, -1] - ranked[:, -2] >= DECISIVE  # where the adapted model is sure of its choice
    changed = top_lora != top_plain  # where the adapter changes the choice
    agreement, sure = (top_merged == top_lora).mean(), (top_merged == top_lora)[decisive].mean()
    print(f"positions {len(top_lora)}, agreement {agreement:.3f}, where sure {sure:.3f} ({decisive.sum()}), "
          f"adapter changes {changed.mean():.3f}, kept {(top_merged == top_lora)[changed].mean():.3f}")  # fmt: skip
    assert changed.mean() > 0.05  # the adapter matters, so agreement is not had for free
    assert sure >= 0.95 and agreement >= 0.85
    assert (top_merged == top_lora)[changed].mean() >= 0.6  # the merged model makes the adapter's choices
    distance = np.sqrt(((merged - lora) ** 2).mean())
    assert distance < 0.3 * np.sqrt(((plain - lora) ** 2).mean())  # and is far nearer it than the base is
