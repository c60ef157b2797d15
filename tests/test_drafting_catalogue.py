"""The catalogue of recommended models: the shipped file loads, memory and speed estimates say where they come
from, and the model and voice in use are described."""

from __future__ import annotations

import importlib.resources
import json

import pytest

from assistant.drafting.catalogue import (
    WORK_BYTES,
    CatalogueError,
    active_model,
    estimate_speed,
    load_catalogue,
    measured_speed,
    speed_basis,
)
from assistant.drafting.models import MODEL_KEY, embedded_model_path
from assistant.store.db import set_setting


def shipped() -> dict:
    return json.loads((importlib.resources.files("resources") / "models.json").read_text(encoding="utf-8"))


def test_the_shipped_catalogue_loads_with_every_field():
    catalogue = load_catalogue()
    assert len(catalogue.models) >= 3 and all(m.url.startswith("https://") for m in catalogue.models)
    assert all(m.file.endswith(".gguf") and m.size_bytes > 1e9 for m in catalogue.models)
    assert catalogue.reference.tokens_per_second > 0 and "BENCHMARKS.md" in catalogue.reference.source


def test_memory_is_the_file_the_context_cache_and_work_buffers():
    llama = next(m for m in load_catalogue().models if m.name == "Meta-Llama-3-8B-Instruct")
    cache = 2 * 32 * 4096 * 8 * 128 * 2  # keys and values, 32 layers, 8 KV heads of 128, f16: 512 MiB
    assert llama.memory_bytes(4096) == llama.size_bytes + cache + WORK_BYTES
    assert llama.memory_bytes(8192) - llama.memory_bytes(4096) == cache


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["models"][0].pop("url"), "fields ['url']"),
        (lambda d: d["models"][0].update(size_bytes="4.9 GB"), "size_bytes"),
        (lambda d: d["models"][0].update(layers=True), "layers"),
        (lambda d: d.update(models=[]), "is empty"),
        (lambda d: d.pop("reference"), "reference"),
    ],
)
def test_a_damaged_catalogue_is_one_clear_error(change, message):
    data = shipped()
    change(data)
    with pytest.raises(CatalogueError, match="reinstall Mailvoice") as caught:
        load_catalogue(json.dumps(data))
    assert message in str(caught.value)


def test_speed_is_measured_here_once_drafts_exist_else_documented(db):
    catalogue = load_catalogue()
    documented = estimate_speed(catalogue, 2 * catalogue.reference.size_bytes, None)
    assert documented.basis == "documented"
    assert documented.tokens_per_second == catalogue.reference.tokens_per_second / 2
    assert "BENCHMARKS.md" in documented.detail
    for tokens, seconds, first in ((101, 3.0, 1.0), (51, 2.0, 1.0), (201, 5.0, 1.0), (5, 1.0, "?")):
        db["drafts"].insert({"model": "small.gguf", "tokens": tokens, "seconds": seconds,
                             "params": json.dumps({"first_token_seconds": first})})  # fmt: skip
    assert measured_speed(db, "small.gguf") == 50.0  # median of 50, 50, 50 tokens/s; the bad row is skipped
    assert measured_speed(db, "other.gguf") is None
    measured = estimate_speed(catalogue, 4_000_000_000, ("Small", 1_000_000_000, 50.0))
    assert (measured.basis, measured.tokens_per_second) == ("measured", 12.5)
    assert measured.detail.startswith("measured here: Small drafts at 50 tokens/s")


def test_the_active_model_and_voice_are_described(db, tmp_path):
    active = active_model(db)
    assert active.builtin and active.path == str(embedded_model_path()) and active.adapter is None
    assert active.size_bytes > 0 and not active.problem
    assert speed_basis(db, active) is None  # nothing drafted here yet
    set_setting(db, MODEL_KEY, str(tmp_path / "gone.gguf"))
    gone = active_model(db)
    assert not gone.builtin and "does not exist" in gone.problem and speed_basis(db, gone) is None
