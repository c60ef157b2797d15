"""Preflight arithmetic: LoRA size, peak memory terms, recommendations, refusals; architecture numbers."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from assistant.drafting.models import embedded_model_path
from trainer import preflight
from trainer.base_model import BaseModelError
from trainer.config import TrainConfig
from trainer.preflight import GB, SHAPES, Hardware, PreflightError, estimate_memory, lora_parameters
from trainer.shapes import shape_of

LLAMA3 = SHAPES["llama3-8b"]


def gpu(gb: float) -> Hardware:
    return Hardware("cuda", "Test GPU", int(gb * GB), int(gb * GB), 64 * GB, 60 * GB, 16, bf16=True)


def cpu(gb: float) -> Hardware:
    return Hardware("cpu", "CPU (2 cores)", int(gb * GB), int(gb * GB), int(gb * GB), int(gb * GB), 2)


@pytest.fixture(autouse=True)
def fixed_speed(monkeypatch):
    # The assumed rate comes from a matmul benchmark; tests fix it (400 TFLOP/s GPU, 50 GFLOP/s CPU).
    monkeypatch.setattr(preflight, "matmul_flops", lambda device: 4e14 if device == "cuda" else 5e10)


def test_lora_parameter_count_matches_peft():
    # peft reports 2,442,240 trainable parameters for SmolLM2-135M at r=8 on all seven projections.
    assert lora_parameters(SHAPES["smollm2-135m"], 8, TrainConfig().target_modules) == 2_442_240
    assert lora_parameters(LLAMA3, 16, ("q_proj", "v_proj")) == 32 * 16 * (4096 + 4096 + 4096 + 1024)


def test_llama3_logits_term_is_sequence_times_vocabulary():
    cfg = TrainConfig(batch_size=1, max_seq_len=2048)
    m = estimate_memory(LLAMA3, cfg, "cuda")
    assert m.logits == 2048 * 128256 * (2 + 4 + 4)  # bf16 logits, their fp32 copy, its gradient
    assert m.logits > m.activations and m.logits > m.optimizer
    assert 5 * GB < m.weights < 6 * GB  # 4-bit projections + bf16 embeddings and output matrix


def test_memory_grows_with_batch_and_sequence():
    small = estimate_memory(LLAMA3, TrainConfig(batch_size=1, max_seq_len=512), "cuda").total
    longer = estimate_memory(LLAMA3, TrainConfig(batch_size=1, max_seq_len=1024), "cuda").total
    wider = estimate_memory(LLAMA3, TrainConfig(batch_size=4, max_seq_len=1024), "cuda").total
    assert small < longer < wider
    assert 7 * GB < small < 10 * GB  # QLoRA on an 8B model: known to fit a 10-12 GB GPU at short sequences
    no_ckpt = estimate_memory(LLAMA3, TrainConfig(batch_size=4, gradient_checkpointing=False), "cuda").total
    assert no_ckpt > estimate_memory(LLAMA3, TrainConfig(batch_size=4), "cuda").total


def test_without_checkpointing_lora_dropout_keeps_a_copy_of_every_adapted_input():
    """A real run without checkpointing peaked 2.3 GB above one with it, the generated benchmark (no dropout) 1.1 GB:
    dropout keeps each adapted projection's dropped input for the backward pass (BENCHMARKS.md)."""
    shape, cfg = SHAPES["smollm2-135m"], TrainConfig(batch_size=2, max_seq_len=1024, gradient_checkpointing=False)
    kept = (
        estimate_memory(shape, cfg, "cpu").activations
        - estimate_memory(shape, replace(cfg, lora_dropout=0.0), "cpu").activations
    )
    widths = 6 * shape.hidden + shape.intermediate  # q, k, v, o, gate, up read the hidden state; down the MLP's
    assert kept == shape.layers * 2 * 1024 * widths * 4
    checkpointed = replace(cfg, gradient_checkpointing=True)
    assert estimate_memory(shape, checkpointed, "cpu") == estimate_memory(
        shape, replace(checkpointed, lora_dropout=0.0), "cpu"
    )


def test_without_checkpointing_the_cpu_heap_is_counted_and_with_it_not():
    """Without checkpointing glibc's heap fragments (the embedded model peaked at 8.7 GB where its tensors take 6.2):
    preflight counts it. With checkpointing the worker maps large blocks itself, and on a GPU the tensors are not
    on that heap."""
    shape, cfg = SHAPES["smollm2-135m"], TrainConfig(batch_size=2, max_seq_len=1024, gradient_checkpointing=False)
    m = estimate_memory(shape, cfg, "cpu")
    assert m.heap == int((m.activations + m.logits) * preflight.HEAP_SHARE) > 0
    assert m.total == m.weights + m.lora + m.optimizer + m.activations + m.logits + m.overhead + m.heap
    assert 8.5 * GB < m.total < 9 * GB  # above the 8,752 MiB measured, not far above
    assert estimate_memory(shape, replace(cfg, gradient_checkpointing=True), "cpu").heap == 0
    assert estimate_memory(shape, cfg, "cuda").heap == 0


def test_fits_as_asked_on_a_big_gpu():
    pf = preflight.preflight(LLAMA3, TrainConfig(), gpu(80), train_tokens=300_000)
    assert pf.ok and pf.fits
    assert pf.recommended == {"batch_size": 4, "grad_accum": 2, "max_seq_len": 1024, "gradient_checkpointing": True}
    assert pf.rate_source == "assumed" and 0 < pf.hours < 5


def test_recommends_smaller_batches_when_the_asked_ones_do_not_fit():
    pf = preflight.preflight(LLAMA3, TrainConfig(batch_size=8, grad_accum=1), gpu(16), train_tokens=100_000)
    assert pf.ok and not pf.fits
    r = pf.recommended
    assert r["batch_size"] * r["grad_accum"] == 8 and r["batch_size"] < 8  # the same effective batch
    assert any("use batch_size" in a for a in pf.advice)


def test_a_cpu_run_trains_without_gradient_checkpointing_where_it_fits_and_with_it_where_only_that_fits():
    """Checkpointing slows a CPU's step (BENCHMARKS.md); memory decides whether the recipe may leave it off."""
    shape, asked = SHAPES["smollm2-135m"], TrainConfig(gradient_checkpointing=False, batch_size=2, max_seq_len=1024)
    without = estimate_memory(shape, asked, "cpu").total
    with_it = estimate_memory(shape, replace(asked, gradient_checkpointing=True), "cpu").total
    roomy = preflight.preflight(shape, asked, cpu(16), train_tokens=50_000)
    assert roomy.fits and roomy.recommended["gradient_checkpointing"] is False

    tight = preflight.preflight(shape, asked, cpu((with_it + without) / 2 / 0.9 / GB), train_tokens=50_000)
    assert tight.ok and not tight.fits
    assert tight.recommended == {"batch_size": 2, "grad_accum": 2, "max_seq_len": 1024, "gradient_checkpointing": True}
    assert any("use gradient_checkpointing on, batch_size 2" in a for a in tight.advice)
    # The time is that of the run as it will train, with checkpointing: it repeats the forward pass (6 FLOPs per
    # parameter and token, not 4), and the worker's allocator setting for such a run slows a CPU step.
    assert tight.hours == pytest.approx(roomy.hours * 1.5 / preflight.CPU_ALLOCATOR_SPEED)


def test_the_allocators_slower_step_is_counted_on_the_cpu_only():
    """The allocator setting was measured on the CPU; a GPU's step does not run in glibc's heap."""
    cfg = TrainConfig(gradient_checkpointing=True)
    on_gpu = preflight.preflight(LLAMA3, cfg, gpu(80), train_tokens=50_000)
    without = preflight.preflight(LLAMA3, replace(cfg, gradient_checkpointing=False), gpu(80), train_tokens=50_000)
    assert on_gpu.hours == pytest.approx(without.hours * 1.5)


def test_a_measured_rate_counts_only_for_a_run_that_trains_as_the_one_measured():
    shape, asked = SHAPES["smollm2-135m"], TrainConfig(gradient_checkpointing=False, max_seq_len=1024)
    squeezed = cpu(estimate_memory(shape, replace(asked, gradient_checkpointing=True), "cpu").total / 0.9 / GB)
    assert preflight.preflight(shape, asked, cpu(32), 9_000, measured_rate=10.0).rate_source == "measured"
    assert preflight.preflight(shape, asked, squeezed, 9_000, measured_rate=10.0).rate_source == "assumed"


def test_refuses_when_nothing_fits_and_names_a_smaller_base():
    pf = preflight.preflight(LLAMA3, TrainConfig(), gpu(4), train_tokens=10_000)
    assert not pf.ok and not pf.recommended
    with pytest.raises(PreflightError, match="does not fit.*Llama-3.2-1B"):
        preflight.check(pf)


def test_refuses_a_run_that_would_take_days():
    pf = preflight.preflight(LLAMA3, TrainConfig(), cpu(64), train_tokens=2_000_000)
    assert pf.fits and not pf.ok
    with pytest.raises(PreflightError, match="days"):
        preflight.check(pf)


def test_a_measured_rate_wins_over_the_assumed_one():
    pf = preflight.preflight(SHAPES["smollm2-135m"], TrainConfig(epochs=1), cpu(8), 90_000, measured_rate=10.0)
    assert pf.rate_source == "measured" and pf.hours == pytest.approx(2.5)
    assert any("GPU would take minutes" in a for a in pf.advice)


def test_max_steps_bounds_the_time():
    slow = preflight.preflight(LLAMA3, TrainConfig(), cpu(64), 2_000_000)
    capped = preflight.preflight(LLAMA3, replace(TrainConfig(), max_steps=2), cpu(64), 2_000_000)
    assert capped.hours < slow.hours / 100 and capped.ok


def test_architecture_numbers_from_the_embedded_gguf():
    shape = shape_of(embedded_model_path())
    assert (shape.layers, shape.hidden, shape.intermediate, shape.heads, shape.kv_heads, shape.vocab) == (
        30,
        576,
        1536,
        9,
        3,
        49152,
    )
    assert shape.tied_embeddings and shape.architecture == "llama"


def test_architecture_numbers_from_a_hugging_face_folder(tmp_path):
    config = {
        "model_type": "llama",
        "num_hidden_layers": 32,
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "vocab_size": 128256,
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    shape = shape_of(tmp_path)
    assert shape.parameters == pytest.approx(LLAMA3.parameters, rel=0.01)
    assert estimate_memory(shape, TrainConfig(), "cuda").total == pytest.approx(
        estimate_memory(LLAMA3, TrainConfig(), "cuda").total, rel=0.01
    )


def test_a_missing_base_is_a_clear_error(tmp_path):
    with pytest.raises(BaseModelError, match="does not exist"):
        shape_of(tmp_path / "nope.gguf")


def test_report_is_json_ready():
    pf = preflight.preflight(LLAMA3, TrainConfig(), gpu(24), 50_000)
    data = json.loads(json.dumps(pf.to_json()))
    assert data["ok"] and data["memory_gb"]["total"] > data["memory_gb"]["logits"] > 0
    assert data["hardware"]["device"] == "cuda" and data["base"]["vocab"] == 128256


def test_a_cpu_machine_gets_the_cpu_recipe_for_every_setting_the_person_left_alone(db):
    """`mailvoice train` on a machine without a GPU picks the CPU recipe by itself, and says which and why; what
    the person set (in the settings or as an option) wins, and a GPU keeps the defaults."""
    from assistant.store.db import set_setting
    from trainer import jobs

    cfg = jobs.resolve_config(db, hardware=cpu(16))
    assert (cfg.max_seq_len, cfg.batch_size, cfg.grad_accum, cfg.eval_every) == (1024, 2, 2, 10)
    assert cfg.extra["recipe"]["name"] == "cpu" and "no GPU" in jobs.recipe_text(cfg)
    assert "1024 tokens" in jobs.recipe_text(cfg) and "batch 2 x 2" in jobs.recipe_text(cfg)
    assert not cfg.gradient_checkpointing and "without gradient checkpointing" in jobs.recipe_text(cfg)

    set_setting(db, "train", {"max_seq_len": 1024})
    cfg = jobs.resolve_config(db, hardware=cpu(16), batch_size=8)
    assert (cfg.max_seq_len, cfg.batch_size, cfg.grad_accum) == (1024, 8, 2)
    assert "max_seq_len" not in cfg.extra["recipe"]["settings"] and "batch_size" not in cfg.extra["recipe"]["settings"]

    set_setting(db, "train", {"gradient_checkpointing": True})
    assert jobs.resolve_config(db, hardware=cpu(16)).gradient_checkpointing

    cfg = jobs.resolve_config(db, hardware=gpu(24))
    assert (cfg.max_seq_len, cfg.batch_size, cfg.eval_every) == (1024, 4, 50) and cfg.gradient_checkpointing
    assert "recipe" not in cfg.extra and jobs.recipe_text(cfg) == ""


def test_the_recipe_chosen_is_saved_with_the_run(db, tmp_path):
    from trainer import jobs
    from trainer.config import TrainConfig

    cfg = jobs.resolve_config(db, hardware=cpu(16))
    cfg.save(tmp_path / "config.json")
    assert TrainConfig.load(tmp_path / "config.json").extra["recipe"]["settings"]["max_seq_len"] == 1024


def test_preflight_says_which_recipe_the_machine_chose_and_why(db, tmp_path):
    """The CLI prints preflight's advice and the app shows it: the recipe is the first line of it."""
    from trainer import jobs
    from trainer.data import Example

    cfg = jobs.resolve_config(db, hardware=cpu(16))
    pf = jobs.run_preflight(tmp_path, cfg, [Example("Ask Bob", "", "Hi Bob, can you?")], hardware=cpu(16))
    assert pf.advice[0].startswith("The CPU recipe (1024 tokens, batch 2 x 2") and "no GPU was found" in pf.advice[0]
    gpu_cfg = jobs.resolve_config(db, hardware=gpu(24))
    assert not any("recipe" in a for a in jobs.run_preflight(tmp_path, gpu_cfg, [], hardware=gpu(24)).advice)


def test_training_tokens_are_counted_from_written_prompts_or_guessed_from_the_emails():
    from trainer.data import Example
    from trainer.jobs import PROMPT_TOKENS, SHOWN_EMAIL_TOKENS, estimate_tokens

    cfg = TrainConfig(max_seq_len=512, examples_probability=0.5)
    short = [Example("Tell Ann the plan", "", "w " * 100) for _ in range(4)]  # 200 characters: 50 tokens
    own = (len("Tell Ann the plan") + 200) // 4 + PROMPT_TOKENS
    shown = 3 * (50 + SHOWN_EMAIL_TOKENS)  # three of the user's emails of the median length, half of the time
    assert estimate_tokens(short, cfg) == int(4 * (own + 0.5 * shown))
    assert estimate_tokens(short, replace(cfg, examples_probability=0.0)) == 4 * own
    assert estimate_tokens(short) == 4 * own  # no settings (the pair list): the prompt without examples
    assert estimate_tokens([Example("x", "", "w " * 2000)], cfg) == 512  # fills max_seq_len alone: no room
    written = [{"role": "system", "content": "s" * 400}, {"role": "user", "content": "u" * 80}]
    assert estimate_tokens([replace(short[0], messages=written)], cfg) == 480 // 4 + 200 // 4 + 20
    assert estimate_tokens([replace(short[0], split="validation")], cfg) == 0


def test_train_seconds_follow_epochs_and_max_steps():
    assert preflight.train_seconds(TrainConfig(epochs=2), 1_000, rate=10.0) == pytest.approx(200.0)
    capped = replace(TrainConfig(epochs=3, batch_size=2, grad_accum=2, max_seq_len=512), max_steps=1)
    assert preflight.train_seconds(capped, 1_000_000, rate=100.0) == pytest.approx(2 * 2 * 512 / 100.0)
    # with the examples known, a step is that many of their mean length, not full sequences
    assert preflight.train_seconds(capped, 20_000, rate=100.0, examples=100) == pytest.approx(2 * 2 * 200 / 100.0)
    assert preflight.train_seconds(capped, 20_000, rate=100.0, examples=100, once=500) == pytest.approx(13.0)


def test_a_preference_run_capped_by_steps_still_scores_every_pair_once(tmp_path):
    from trainer import jobs
    from trainer.edits import PreferencePair

    pair = PreferencePair(1, "Tell Ann the plan", "", "", "k" * 800, "d" * 800, "edit")
    base = str(embedded_model_path())
    cfg = replace(TrainConfig(base=base, epochs=1, batch_size=1, grad_accum=1, max_seq_len=512), max_steps=1)
    plan = jobs.PreferencePlan(cfg, {"name": "a"}, tmp_path, [pair] * 10, [pair] * 2, False)
    pf = jobs.preference_preflight(tmp_path, plan, cpu(8))
    sequences = jobs.estimate_tokens([jobs.Example(pair.instruction, "", "k" * 800)] * 20, cfg)
    held = jobs.estimate_tokens([jobs.Example(pair.instruction, "", "k" * 800)] * 4, cfg)
    one_step = 2 * sequences / 20  # a chosen and a rejected text
    assert pf.hours * 3600 * pf.tokens_per_second == pytest.approx(one_step + (sequences + held) // 3)


class FakeCore:
    """A clock and a product whose calls take the given seconds in turn, as on a core another program shares."""

    def __init__(self, takes: list[float]):
        self.now, self.takes, self.calls = 0.0, list(takes), 0

    def clock(self) -> float:
        return self.now

    def product(self) -> None:
        self.now += self.takes[self.calls % len(self.takes)]
        self.calls += 1


def test_the_cpu_benchmark_reads_the_fastest_product_not_the_ones_another_program_slowed():
    # Products of 4 ms while a busy program holds the core between some of them, 12 ms when it takes a slice.
    core = FakeCore([0.012, 0.004, 0.012, 0.012, 0.004])
    assert preflight.fastest(core.product, 1e9, seconds=0.1, clock=core.clock) == pytest.approx(1e9 / 0.004)
    assert 0.1 <= core.now < 0.1 + 0.012 + 1e-9  # it keeps measuring for the time given, then stops
    slow = FakeCore([0.5])
    assert preflight.fastest(slow.product, 1e9, seconds=0.1, least=5, clock=slow.clock) == pytest.approx(2e9)
    assert slow.calls == 5  # however long one takes, at least five are timed
    coarse = FakeCore([0.0, 0.0, 0.01])  # a call the clock saw take no time is not taken as the fastest
    assert preflight.fastest(coarse.product, 1e9, seconds=0.1, clock=coarse.clock) == pytest.approx(1e11)
    stopped = FakeCore([0.0])  # a clock that does not move: the calls are still bounded
    assert preflight.fastest(stopped.product, 1e9, clock=stopped.clock) > 0
    assert stopped.calls == preflight.MOST_PRODUCTS
