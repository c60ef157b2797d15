"""TrainConfig: defaults are valid, it round-trips through JSON, and bad settings are refused clearly."""

from __future__ import annotations

import dataclasses

import pytest

from trainer.config import ALL_PROJECTIONS, ConfigError, TrainConfig, field_help


def test_defaults_are_the_documented_ones():
    cfg = TrainConfig()
    assert cfg.target_modules == ALL_PROJECTIONS
    assert (cfg.lora_r, cfg.lora_alpha, cfg.checkpoint_every) == (16, 32.0, 50)
    assert cfg.gradient_checkpointing and cfg.group_by_length


def test_round_trip_through_json_and_file(tmp_path):
    cfg = TrainConfig(base="/m.gguf", lora_r=8, target_modules=("q_proj", "v_proj"), max_steps=7, extra={"a": 1})
    assert TrainConfig.from_json(cfg.to_json()) == cfg
    cfg.save(tmp_path / "config.json")
    assert TrainConfig.load(tmp_path / "config.json") == cfg
    assert isinstance(TrainConfig.load(tmp_path / "config.json").target_modules, tuple)


def test_replace_ignores_options_not_given():
    cfg = TrainConfig().replace(lora_r=4, epochs=None, learning_rate=None)
    assert cfg.lora_r == 4 and cfg.epochs == 3 and cfg.learning_rate == 2e-4


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"epochs": 0}, "epochs"),
        ({"learning_rate": 5.0}, "learning_rate"),
        ({"lora_r": 0}, "lora_r"),
        ({"target_modules": ()}, "target_modules"),
        ({"max_seq_len": 16}, "max_seq_len"),
        ({"device": "tpu"}, "device"),
        ({"compute_dtype": "int8"}, "compute_dtype"),
    ],
)
def test_bad_values_are_refused_with_the_setting_named(changes, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**changes)


def test_unknown_keys_are_an_error_not_ignored():
    with pytest.raises(ConfigError, match="lora_rank"):
        TrainConfig.from_json({"lora_rank": 8})


def test_damaged_config_file_is_a_clear_error(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="cannot read"):
        TrainConfig.load(tmp_path / "config.json")


def test_warmup_defaults_to_five_percent():
    assert TrainConfig().warmup_for(200) == 10
    assert TrainConfig().warmup_for(3) == 1
    assert TrainConfig(warmup_steps=50).warmup_for(20) == 20


def test_every_field_is_documented():
    helps = field_help()
    assert {f.name for f in dataclasses.fields(TrainConfig)} == set(helps)
    assert "alpha / r" in helps["lora_alpha"]
