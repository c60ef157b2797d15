"""Preference tuning (DPO) on the user's corrections: the loss is trl's, runs are refused with reasons, prompts and
pairs are frozen in the run, the stand-in trainer runs them, and (slow) the real recipe trains, resumes on its
cached reference, exports and registers an adapter on the embedded model."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace

import click
import pytest
import torch
from click.testing import CliRunner
from fake_trainer import with_fake

from assistant.cli import train as train_cli
from assistant.drafting.corrections import capture
from assistant.drafting.drafts import save_draft
from assistant.drafting.models import embedded_model_path
from assistant.paths import data_dir
from assistant.store import open_store
from assistant.store.adapters import list_adapters, register, use_adapter
from assistant.store.db import set_setting
from trainer import jobs
from trainer.base_model import identify
from trainer.config import TrainConfig
from trainer.data import IGNORE, Encoded
from trainer.preference import (
    PAIRS_FILE,
    REFERENCE_FILE,
    EncodedPair,
    PreferenceError,
    collate_pairs,
    dpo_loss,
    load_pairs,
    pair_metrics,
    sequence_logps,
)
from trainer.process import TrainingProcess

GROUP = click.Group("mailvoice", commands={c.name: c for c in train_cli.COMMANDS})
NAMES = ["Sam", "Priya", "Tom", "Max", "Lee", "Jo", "Ruth", "Omar", "Ana", "Kim", "Ben", "Eve"]


# --- the loss is trl's ------------------------------------------------------------------------------------


class _Accelerator:
    device = torch.device("cpu")

    def gather_for_metrics(self, value):
        return value

    def gather(self, value):
        return value


def _trl_trainer(beta: float):
    """trl 1.16's DPOTrainer with only what its ``_compute_loss`` reads (the sigmoid loss, references given)."""
    from trl import DPOTrainer

    trainer = DPOTrainer.__new__(DPOTrainer)
    trainer.__dict__.update(
        beta=beta, loss_types=["sigmoid"], loss_weights=[1.0], f_divergence_type="reverse_kl", ld_alpha=None,
        precompute_ref_logps=True, use_weighting=False, aux_loss_enabled=False, label_smoothing=0.0,
        accelerator=_Accelerator(), _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
        _total_train_tokens=0, _tp_size=1, model=SimpleNamespace(training=True),
    )  # fmt: skip
    return trainer


def _trl_inputs(batch, reference):
    return {
        "input_ids": batch["input_ids"],
        "attention_mask": batch["attention_mask"],
        "completion_mask": (batch["labels"] != IGNORE).long(),
        "ref_chosen_logps": reference[:, 0],
        "ref_rejected_logps": reference[:, 1],
    }


def test_our_dpo_loss_is_trls_on_the_same_log_probs():
    """trl computes the loss inside DPOTrainer._compute_loss (no standalone function in 1.16): it is fed per-token
    log-probabilities by a stand-in model, and our five lines get their sums."""
    g = torch.Generator().manual_seed(3)
    pairs, width = 6, 12
    completion = torch.zeros(2 * pairs, width, dtype=torch.long)
    for row in range(2 * pairs):
        start = int(torch.randint(2, 6, (1,), generator=g))
        completion[row, start : width - int(torch.randint(0, 3, (1,), generator=g))] = 1
    per_token = -torch.rand(2 * pairs, width - 1, generator=g) * 3 * completion[:, 1:]  # zero off the email
    reference = -torch.rand(pairs, 2, generator=g) * 20
    zeros = torch.zeros_like(per_token)
    outputs = SimpleNamespace(log_probs=per_token, entropy=zeros, mean_logits=zeros, is_top1=zeros.bool())
    inputs = {
        "input_ids": torch.zeros(2 * pairs, width, dtype=torch.long),
        "attention_mask": torch.ones_like(completion),
        "completion_mask": completion,
        "ref_chosen_logps": reference[:, 0],
        "ref_rejected_logps": reference[:, 1],
    }
    for beta in (0.1, 0.5):
        theirs = _trl_trainer(beta)._compute_loss(lambda **_kw: outputs, inputs, return_outputs=False)
        sums = per_token.sum(1)
        ours = dpo_loss(sums[:pairs], sums[pairs:], reference[:, 0], reference[:, 1], beta).mean()
        assert float(ours) == pytest.approx(float(theirs), abs=1e-6)
        assert float(theirs) != pytest.approx(math.log(2), abs=1e-3)  # the margins are not all zero


def _tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)  # fmt: skip
    return LlamaForCausalLM(config).eval()


def _pair(g, prompt_len: int, chosen_len: int, rejected_len: int) -> EncodedPair:
    prompt = torch.randint(0, 64, (prompt_len,), generator=g).tolist()

    def side(n):
        completion = torch.randint(0, 64, (n,), generator=g).tolist()
        return Encoded(prompt + completion, [IGNORE] * prompt_len + completion)

    return EncodedPair(side(chosen_len), side(rejected_len))


@pytest.fixture
def no_grad():
    with torch.no_grad():
        yield


def test_sequence_log_probs_and_loss_match_trl_on_a_real_model(no_grad):
    """The whole chain on a tiny random Llama: our email-only log-probabilities (logits only where an email
    token is predicted) and loss against trl's fused LM head and loss, on the same padded batch."""
    from trl.trainer.utils import add_fused_lm_head

    model, g = _tiny_llama(), torch.Generator().manual_seed(1)
    pairs = [_pair(g, 7, 5, 9), _pair(g, 4, 11, 3), _pair(g, 9, 6, 6)]
    batch = collate_pairs(pairs, pad_id=0)
    ours_logps = sequence_logps(model, batch, "cpu")
    reference = ours_logps.detach().view(2, 3).T + torch.tensor([[0.7, -1.3], [-2.0, 0.4], [0.3, 0.3]])
    add_fused_lm_head(model, outputs=("log_probs", "entropy", "mean_logits", "is_top1"))
    labels = batch["input_ids"].masked_fill(batch["labels"] == IGNORE, IGNORE)
    theirs_logps = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels,
                         fused_lm_head=True).log_probs.sum(1)  # fmt: skip
    assert torch.allclose(ours_logps, theirs_logps, atol=1e-4)
    theirs = _trl_trainer(0.1)._compute_loss(model, _trl_inputs(batch, reference), return_outputs=False)
    ours = dpo_loss(ours_logps[:3], ours_logps[3:], reference[:, 0], reference[:, 1], 0.1).mean()
    assert float(ours) == pytest.approx(float(theirs), abs=1e-6)


def test_measures_before_any_step_and_ties():
    scores = torch.tensor([[-10.0, -12.0], [-9.0, -8.0], [-5.0, -5.0]])
    before = pair_metrics(scores, scores, 0.1)
    assert before["eval_loss"] == pytest.approx(math.log(2)) and before["preference_accuracy"] == 0.5
    assert before["chosen_accuracy"] == pytest.approx(1.5 / 3)  # one higher, one lower, one tie
    after = pair_metrics(scores + torch.tensor([[1.0, -1.0], [0.5, 0.0], [0.0, 2.0]]), scores, 0.1)
    assert after["preference_accuracy"] == pytest.approx(2 / 3) and after["eval_loss"] < math.log(2)


def test_events_of_earlier_logs_read_as_before_and_new_fields_round_trip():
    from trainer.events import Eval, Finished, parse

    old = parse({"event": "eval", "step": 3, "eval_loss": 1.25, "best": True})
    assert isinstance(old, Eval) and old.preference_accuracy is None and old.chosen_accuracy is None
    assert old.to_json() == {"event": "eval", "step": 3, "eval_loss": 1.25, "best": True}
    assert parse({"event": "finished", "status": "done", "steps": 2}).preference is None
    new = Eval(step=0, eval_loss=0.69, preference_accuracy=0.5, chosen_accuracy=1.0)
    assert parse(new.to_json()) == new
    done = Finished(status="done", steps=4, preference={"preference_accuracy_after": 1.0})
    assert parse(done.to_json()) == done


# --- runs: refused with reasons, created with their prompts, run by the stand-in trainer ------------------


def _model_text(n: int) -> str:
    return f"Dear {NAMES[n % len(NAMES)]},\n\nI am writing to let you know about item {n}.\n\nKind regards,\nAlex"


def _correct(db, n: int, final: str | None = None) -> int:
    """A draft as drafting saves it, then the user's text for it (a rewrite in their voice by default)."""
    name = NAMES[n % len(NAMES)]
    draft = save_draft(db, instruction=f"Tell {name} about item {n}", reply=None, recipient=f"{name.lower()}@x.org",
                       subject="", text=_model_text(n), model="m.gguf", adapter="", params={}, seconds=1.0,
                       tokens=20)  # fmt: skip
    return capture(db, draft, final or f"Hey {name}!\n\nItem {n} is sorted.\n\nZed x").id


def _stand_in_adapter(db, root: Path, name: str = "style-a") -> dict:
    """A registered adapter on the embedded model whose run folder holds PEFT files (not trained: for runs the
    stand-in trainer runs)."""
    best = root / "runs" / f"run-{name}" / "best"
    best.mkdir(parents=True)
    peft = {"r": 4, "lora_alpha": 8, "target_modules": ["v_proj", "q_proj"]}
    (best / "adapter_config.json").write_text(json.dumps(peft))
    (best / "adapter_model.safetensors").write_bytes(b"stand-in")
    gguf = root / "adapters" / name / "adapter.gguf"
    gguf.parent.mkdir(parents=True)
    gguf.write_bytes(b"GGUF stand-in")
    base = identify(embedded_model_path()).to_json()
    return register(db, root, name, gguf, base, {"lora_r": 4}, {"steps": 3}, best.parent)


def _settings(db, **more):
    set_setting(db, "train", {"cpu_threads": 1, "batch_size": 1, "grad_accum": 1, "max_seq_len": 512,
                              "examples_probability": 0.0, **more})  # fmt: skip


def test_no_adapter_is_refused_with_what_to_do(db):
    for n in range(12):
        _correct(db, n)
    with pytest.raises(PreferenceError, match="there is none yet: train an adapter first") as refused:
        jobs.preference_plan(db, data_dir(), jobs.resolve_config(db))
    assert refused.value.cli == "Train one with: mailvoice train"


def test_too_few_corrections_is_refused_with_the_counts(db):
    root = data_dir()
    _stand_in_adapter(db, root)
    for n in range(9):
        _correct(db, n)
    _correct(db, 9, _model_text(9))  # used as written: no pair
    cfg = jobs.resolve_config(db)
    with pytest.raises(PreferenceError) as refused:
        jobs.preference_plan(db, root, cfg)
    text = str(refused.value)
    assert "at least 8 corrections whose words you changed" in text and "1 more among the newest tenth" in text
    assert "you have 9 to learn from and 0 held out (10 corrections in all, 0 excluded)" in text
    with pytest.raises(PreferenceError, match="you have 9 to learn from and 0 held out.*Rule-made texts are added"):
        jobs.preference_plan(db, root, cfg, rule_made=True)
    code = CliRunner().invoke(GROUP, ["train", "--preference"])
    assert code.exit_code == 1 and "you have 9 to learn from" in code.stderr and "mailvoice corrections" in code.stderr


def test_an_adapter_whose_weights_are_gone_is_refused(db):
    root = data_dir()
    _stand_in_adapter(db, root)
    shutil.rmtree(root / "runs" / "run-style-a")
    for n in range(12):
        _correct(db, n)
    with pytest.raises(PreferenceError, match="training weights of the adapter style-a are gone"):
        jobs.preference_plan(db, root, jobs.resolve_config(db))


def test_a_run_freezes_pairs_with_the_drafting_prompt_and_the_stand_in_trainer_runs_it(db):
    root = data_dir()
    _stand_in_adapter(db, root, "style-a")
    _stand_in_adapter(db, root, "style-b")
    use_adapter(db, "style-a")  # the one drafting uses is the default, not the newest
    _settings(db, preference_max_steps=3)
    accepted = [_correct(db, n, _model_text(n)) for n in (20, 21)]  # rule-made rejected texts come from these
    for n in range(11):
        _correct(db, n)
    cfg = jobs.resolve_config(db)
    run = jobs.prepare_preference_run(db, root, cfg, rule_made=True)
    job = json.loads((run / "job.json").read_text())
    assert job["kind"] == "preference" and re.fullmatch(r"style-a-refresh-\d{8}-\d{4}", job["adapter_name"])
    assert job["preference"] == {"from_adapter": "style-a", "rule_made": True,
                                 "pairs": {"train": job["preference"]["pairs"]["train"], "held_out": 1, "edit": 10,
                                           "rule_made": job["preference"]["pairs"]["train"] - 10}}  # fmt: skip
    assert job["preference"]["pairs"]["rule_made"] >= 2 * 3  # doubled, placeholder, greeting, sign-off
    saved = TrainConfig.from_json(job["config"])
    lora = (saved.lora_r, saved.lora_alpha, saved.target_modules, saved.lora_dropout)
    assert lora == (4, 8.0, ("q_proj", "v_proj"), 0)
    assert saved.learning_rate == 5e-5 and saved.max_steps == 3 and saved.epochs == 2  # the 135M model's rate
    assert saved.extra["preference"]["from_adapter"] == "style-a"
    assert sorted(p.name for p in (run / "start").iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]
    pairs = load_pairs(run / PAIRS_FILE)
    held = [p for p in pairs if p.split == "validation"]
    assert len(held) == 1 and held[0].made_by == "edit" and held[0].correction_id == 13  # the newest
    edit = next(p for p in pairs if p.made_by == "edit")
    assert edit.chosen.startswith("Hey Sam!") and edit.rejected.startswith("Dear Sam,")
    # The prompt is the drafting prompt (its system text and the recipient a draft would name), the same for
    # every pair made of one correction.
    assert edit.messages[0]["role"] == "system" and "sam@x.org" in edit.messages[-1]["content"]
    ruled = [p for p in pairs if p.correction_id == accepted[0]]
    assert len(ruled) >= 3 and all(p.messages == ruled[0].messages and p.made_by != "edit" for p in ruled)
    assert all(p.chosen == _model_text(20) != p.rejected for p in ruled)
    assert (run / "prompt.json").is_file()

    with_fake(run, steps=3, delay=0, export=True)
    proc = TrainingProcess(run)
    events = list(proc.events())
    assert [e["step"] for e in events if e["event"] == "eval"] == [0, 3]
    finished = proc.result()
    assert finished["preference"]["from_adapter"] == "style-a" and finished["preference"]["rule_made"] is True
    row = jobs.finish(db, root, run, finished)
    assert row["name"] == job["adapter_name"] and row["metrics"]["preference"]["preference_accuracy_after"] == 1.0
    assert row["config"]["extra"]["preference"]["pairs"]["held_out"] == 1


def test_cli_preference_prints_the_estimate_and_reports_before_and_after(db, monkeypatch):
    class Faked(TrainingProcess):
        def start(self):
            with_fake(self.run_dir, steps=2, delay=0, export=True)
            super().start()

    monkeypatch.setattr("trainer.process.TrainingProcess", Faked)
    root = data_dir()
    _stand_in_adapter(db, root)
    _settings(db)
    for n in range(10):
        _correct(db, n)
    result = CliRunner().invoke(GROUP, ["train", "--preference", "--max-steps", "2", "--beta", "0.2", "--json"])
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert re.fullmatch(r"style-a-refresh-\d{8}-\d{4}", out["adapter"]) and out["steps"] == 2
    assert out["kind"] == "preference" and out["from_adapter"] == "style-a" and out["pairs"]["edit"] == 9
    assert out["chosen_accuracy_after"] == 0.75 and out["preference_accuracy_before"] == 0.5
    assert "Tuning   style-a on 9 of your corrections (1 held out" in result.stderr and "beta 0.2" in result.stderr
    assert "Memory" in result.stderr and "Time" in result.stderr
    assert "Step 0: held-out preference loss" in result.stderr
    (made,) = [a for a in list_adapters(open_store(root)) if a["name"] == out["adapter"]]
    assert made["config"]["preference_beta"] == 0.2 and made["config"]["extra"]["preference"]["rule_made"] is False

    human = CliRunner().invoke(
        GROUP, ["train", "--preference", "--adapter", "style-a", "--max-steps", "2", "--name", "mine"]
    )
    assert human.exit_code == 0, human.stderr
    assert "On 1 held-out corrections, tuned from style-a:" in human.stdout and "Adapter mine is ready" in human.stdout
    assert "50% before, 75% after" in human.stdout


def test_preference_options_go_with_preference_only():
    assert CliRunner().invoke(GROUP, ["train", "--rule-made"]).exit_code == 2
    assert CliRunner().invoke(GROUP, ["train", "--preference", "--lora-r", "4"]).exit_code == 2
    assert CliRunner().invoke(GROUP, ["train", "--preference", "--resume"]).exit_code == 2


# --- the real recipe on the embedded model (slow) ---------------------------------------------------------


@pytest.fixture(scope="module")
def cache(request, tmp_path_factory) -> Path:
    cache = getattr(request.config, "cache", None)
    return Path(cache.mkdir("mailvoice-train")) if cache is not None else tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def start_run(tmp_path_factory, cache) -> Path:
    """A supervised run of a few steps on the embedded model: the adapter preference tuning starts from."""
    from train_rows import ROWS

    from trainer.data import from_rows
    from trainer.recipe import LoRARecipe

    run = tmp_path_factory.mktemp("start") / "run"
    cfg = TrainConfig(base=str(embedded_model_path()), max_steps=3, batch_size=1, grad_accum=1, max_seq_len=128,
                      learning_rate=3e-3, lora_r=4, lora_alpha=8, eval_every=3, checkpoint_every=10, cpu_threads=1,
                      seed=7)  # fmt: skip
    recipe = LoRARecipe(cfg, run, cache)
    recipe.setup(from_rows(ROWS))
    try:
        assert recipe.train().status == "done"
    finally:
        recipe.cleanup()
    return run


def _registered(db, root: Path, start_run: Path, cache: Path) -> dict:
    from trainer.base_model import prepare_base
    from trainer.export import export_gguf

    gguf = root / "adapters" / "style-a" / "adapter.gguf"
    gguf.parent.mkdir(parents=True)
    export_gguf(start_run / "best", prepare_base(embedded_model_path(), cache), gguf, "llama", "style-a")
    cfg = TrainConfig.load(start_run / "best" / "training_config.json")
    base = identify(embedded_model_path()).to_json()
    return register(db, root, "style-a", gguf, base, cfg.to_json(), {"steps": 3}, start_run)


@pytest.mark.slow
def test_reference_is_computed_once_and_a_resume_reuses_it(db, start_run, cache, monkeypatch):
    from trainer.preference import DPORecipe

    root = data_dir()
    os.symlink(cache, root / "cache")
    _registered(db, root, start_run, cache)
    _settings(db, max_seq_len=384, preference_max_steps=4, checkpoint_every=2, eval_every=100)
    for n in range(10):
        _correct(db, n)
    run = jobs.prepare_preference_run(db, root, jobs.resolve_config(db))
    cfg, pairs = TrainConfig.load(run / "config.json"), load_pairs(run / PAIRS_FILE)

    def train(stop_at=None, resume=False):
        events = []
        recipe = DPORecipe(cfg, run, cache, run / "start", events.append,
                           (lambda: recipe.step >= stop_at) if stop_at else None)  # fmt: skip
        recipe.setup(pairs, resume=resume)
        try:
            return recipe.train(), events
        finally:
            recipe.cleanup()

    first, events = train(stop_at=2)
    assert first.status == "cancelled" and first.steps == 2
    scored = json.loads((run / REFERENCE_FILE).read_text())
    assert len(scored["train"]) == 9 and len(scored["validation"]) == 1
    assert [e.get("message") for e in events if e["event"] == "phase"][0].startswith("Scoring 10 pairs")
    losses = [e["loss"] for e in events if e["event"] == "step"]
    assert losses[0] == pytest.approx(math.log(2), abs=1e-5)  # the policy starts as its reference

    # The resume must not score the pairs again: the reference is the adapter before any step, which the
    # checkpoint's weights no longer are.
    monkeypatch.setattr(DPORecipe, "_score_reference", lambda self: pytest.fail("the reference was recomputed"))
    second, more = train(resume=True)
    assert second.status == "done" and second.steps == 4
    assert any(e.get("message", "").startswith("Reusing the starting adapter") for e in more)
    assert [e["step"] for e in more if e["event"] == "step"] == [3, 4]
    assert json.loads((run / REFERENCE_FILE).read_text()) == scored
    done = more[-1]
    assert done["event"] == "done" and done["preference"]["held_out_pairs"] == 1
    assert done["preference"]["preference_accuracy_before"] == 0.5


@pytest.mark.slow
def test_preference_run_end_to_end_in_the_worker_process(db, start_run, cache):
    """Corrections simulated as drafting makes them, a trained adapter to start from, the real worker (the
    conftest's stand-in trainer trains for real without a ``fake`` section): a few DPO steps, a GGUF LoRA
    export, the llama.cpp check, the new adapter registered with its held-out accuracies."""
    root = data_dir()
    os.symlink(cache, root / "cache")
    start = _registered(db, root, start_run, cache)
    # A rate ten times the default: four steps must move the held-out margin visibly.
    _settings(db, max_seq_len=384, preference_max_steps=4, eval_every=2, checkpoint_every=10, parity_examples=1,
              preference_learning_rate=5e-4)  # fmt: skip
    for n in range(10):
        _correct(db, n)
    run = jobs.prepare_preference_run(db, root, jobs.resolve_config(db))
    proc = TrainingProcess(run)
    events = list(proc.events())
    finished = proc.result()
    assert finished["status"] == "done", proc.log_tail()
    evals = [e for e in events if e["event"] == "eval"]
    assert [e["step"] for e in evals] == [0, 2, 4] and all(0 <= e["preference_accuracy"] <= 1 for e in evals)
    assert evals[-1]["eval_loss"] < evals[0]["eval_loss"] == pytest.approx(math.log(2))  # it learned to prefer
    steps = [e["loss"] for e in events if e["event"] == "step"]
    assert len(steps) == 4 and steps[0] == pytest.approx(math.log(2), abs=1e-5)
    pref = finished["preference"]
    assert pref["from_adapter"] == "style-a" and pref["train_pairs"] == 9 and pref["held_out_pairs"] == 1
    assert pref["preference_accuracy_before"] == 0.5 and pref["preference_accuracy_after"] is not None
    assert pref["chosen_accuracy_before"] is not None and pref["chosen_accuracy_after"] is not None
    print(f"losses {[round(x, 4) for x in steps]}; evals {evals}; summary {pref}")
    assert finished["export"]["tensors"] > 0 and finished["parity"]["examples"] == 1
    row = jobs.finish(db, root, run, finished)
    assert row["name"].startswith("style-a-refresh-") and row["metrics"]["preference"] == pref
    saved = json.loads((root / "adapters" / row["name"] / "adapter_config.json").read_text())
    assert saved["preference"]["from_adapter"] == "style-a"
    assert saved["config"]["extra"]["preference"]["pairs"]["edit"] == 9
    assert saved["config"]["lora_r"] == start["config"]["lora_r"] and saved["prompt"]["kind"] == "draft"
    from llama_cpp import Llama

    llm = Llama(str(embedded_model_path()), lora_path=str(root / row["path"]), n_ctx=128, n_threads=1, verbose=False)
    llm.close()  # llama.cpp loads the exported adapter
    shutil.rmtree(root / "runs")


def test_scoring_the_pairs_reports_each_batch_and_a_stop_ends_the_run_before_any_step(monkeypatch):
    """The reference pass takes minutes on a CPU: it says how far it is, and a stop is taken between batches."""
    import types

    import torch

    from trainer import preference

    monkeypatch.setattr(preference, "collate_pairs", lambda chunk, _pad: chunk)
    monkeypatch.setattr(preference, "sequence_logps", lambda _m, chunk, _d: torch.zeros(2 * len(chunk)))
    recipe = preference.DPORecipe.__new__(preference.DPORecipe)
    emitted, stops = [], iter([False, False, True])
    recipe.data = types.SimpleNamespace(train=list(range(5)), validation=[0])
    recipe.cfg = types.SimpleNamespace(batch_size=2)
    recipe.rt = types.SimpleNamespace(any=lambda flag: flag, device="cpu")
    recipe.model = types.SimpleNamespace(eval=lambda: None)
    recipe.tokenizer = types.SimpleNamespace(pad_token_id=0)
    recipe.should_stop = lambda: next(stops)
    recipe._emit = emitted.append
    with pytest.raises(preference._StoppedScoring):
        recipe._score_reference()
    said = [e.message for e in emitted]
    assert said == ["Scoring 6 pairs with the starting adapter (once)",
                    "Scoring the pairs with the starting adapter: 2 of 6",
                    "Scoring the pairs with the starting adapter: 4 of 6"]  # fmt: skip
    assert [e.fraction for e in emitted[1:]] == [0.333, 0.667]

    recipe.stopped_in_setup, finished = True, []
    monkeypatch.setattr(recipe, "_finish", lambda status: finished.append(status) or status, raising=False)
    assert recipe.train() == "cancelled" and finished == ["cancelled"]  # no step is taken
