"""The adapters table: migration, registering, listing, choosing; drafting finds what training registered."""

from __future__ import annotations

import pytest
from test_train_export import _base, _peft_adapter

from assistant.drafting.models import resolve_adapter
from assistant.paths import data_dir
from assistant.store.adapters import AdapterError, list_adapters, register, unique_name, use_adapter
from assistant.store.db import get_setting
from assistant.store.migrations import m005_adapters
from trainer.export import export_gguf

BASE = {"path": "/models/base.gguf", "size": 123, "sha256": "ab" * 32, "kind": "gguf", "name": "base"}


def _register(db, tmp_path, name="style-1"):
    root = data_dir()
    _peft_adapter(tmp_path / f"peft-{name}")
    folder = root / "adapters" / name
    folder.mkdir(parents=True)
    export_gguf(
        tmp_path / f"peft-{name}",
        tmp_path / "base" if (tmp_path / "base").exists() else _base(tmp_path / "base"),
        folder / "adapter.gguf",
    )
    return register(
        db,
        root,
        name,
        folder / "adapter.gguf",
        BASE,
        {"lora_r": 2},
        {"steps": 5, "eval_loss": 1.25},
        root / "runs" / "r1",
    )


def test_migration_is_idempotent(db):
    m005_adapters(db)
    m005_adapters(db)
    assert {"name", "path", "base_sha256", "config", "metrics"} <= set(db["adapters"].columns_dict)


def test_registered_adapter_is_listed_with_base_config_and_metrics(db, tmp_path):
    row = _register(db, tmp_path)
    assert row["path"] == "adapters/style-1/adapter.gguf"  # relative: the data folder can move
    (listed,) = list_adapters(db)
    assert listed["base"]["sha256"] == BASE["sha256"] and listed["config"] == {"lora_r": 2}
    assert listed["metrics"]["eval_loss"] == 1.25 and listed["in_use"] is False


def test_use_makes_drafting_pick_the_adapter(db, tmp_path):
    _register(db, tmp_path)
    assert use_adapter(db, "style-1") == "style-1"
    assert get_setting(db, "adapter") == "style-1"
    name, path = resolve_adapter(db, None)
    assert name == "style-1" and path == str(data_dir() / "adapters/style-1/adapter.gguf")
    assert list_adapters(db)[0]["in_use"]
    assert use_adapter(db, "none") is None
    assert resolve_adapter(db, None) == (None, None)


def test_use_of_an_unknown_adapter_names_the_known_ones(db, tmp_path):
    _register(db, tmp_path)
    with pytest.raises(AdapterError, match="Your adapters: style-1"):
        use_adapter(db, "nope")


def test_unique_names(db, tmp_path):
    _register(db, tmp_path)
    assert unique_name(db, "style-1") == "style-1-2"
    assert unique_name(db, "none") == "none-2"
    assert unique_name(db, "fresh") == "fresh"
