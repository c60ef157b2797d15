"""Training data: loading, the chat format with the loss on the email only, truncation order, batching."""

from __future__ import annotations

import json

import pytest

from trainer.data import (
    CUT_MARK,
    IGNORE,
    DataError,
    Example,
    collate,
    encode,
    encode_all,
    from_jsonl,
    from_store,
    load_examples,
    plan_batches,
    save_jsonl,
    step_batches,
    system_prompt,
)


class CharTokenizer:
    """One token per character, and a chat template shaped like SmolLM's (turn markers, end-of-turn)."""

    eos_token, pad_token_id = "|", 0

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=False):
        text = "".join(f"<{m['role']}>{m['content']}|" for m in messages)
        return text + ("<assistant>" if add_generation_prompt else "")

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [ord(c) for c in text]}

    def decode(self, ids):
        return "".join(chr(i) for i in ids)


TOK = CharTokenizer()


def _email(encoded):
    return TOK.decode([t for t in encoded.labels if t != IGNORE])


def test_loss_is_on_the_email_and_its_end_of_turn_only():
    e = encode(TOK, Example("Say hi", "", "Hi Sam"), "SYS", 200)
    assert _email(e) == "Hi Sam|"
    prompt = TOK.decode(e.input_ids[: e.labels.index(ord("H"))])
    assert prompt == "<system>SYS|<user>Instruction: Say hi|<assistant>"
    assert e.cut == []


def test_context_goes_into_the_user_turn():
    e = encode(TOK, Example("Answer", "Are you coming?", "Yes"), "S", 300)
    text = TOK.decode(e.input_ids)
    assert "<email>\nAre you coming?\n</email>" in text and text.index("Are you") < text.index("Instruction:")


def test_context_is_cut_before_the_email():
    long_context = "context words " * 40
    e = encode(TOK, Example("Reply yes", long_context, "Yes, I will be there. Ana"), "S", 160)
    assert len(e) <= 160
    assert _email(e) == "Yes, I will be there. Ana|"  # the email is whole
    assert CUT_MARK.strip() in TOK.decode(e.input_ids) and "Instruction: Reply yes" in TOK.decode(e.input_ids)
    assert e.cut == ["context"]


def test_then_the_email_tail_is_cut_and_the_instruction_never():
    e = encode(TOK, Example("Write the long one", "ctx " * 30, "Dear team, " + "word " * 100), "S", 120)
    assert len(e) == 120
    assert _email(e).startswith("Dear team, word") and "<email>" not in TOK.decode(e.input_ids)
    assert "Instruction: Write the long one" in TOK.decode(e.input_ids)
    assert e.cut == ["context", "email"]


def test_an_instruction_that_leaves_no_room_is_skipped():
    assert encode(TOK, Example("x" * 200, "", "Hi"), "S", 100, min_email=32) is None
    data = encode_all(TOK, [Example("x" * 2000, "", "Hi"), Example("ok", "", "Hi")], 1024, 32)
    assert data.skipped == 1 and len(data.train) == 1


def test_no_training_examples_is_a_clear_error():
    with pytest.raises(DataError, match="build pairs from your sent mail first"):
        encode_all(TOK, [Example("a", "", "b", "validation")], 256)


def test_system_prompt_is_short_and_fixed():
    text = system_prompt()
    assert "voice" in text and len(text) < 400 and "{" not in text


def test_examples_from_a_list_a_jsonl_file_and_back(tmp_path):
    rows = [
        {"instruction": "a", "input": "", "output": "b", "split": "train"},
        {"instruction": "c", "output": "d", "split": "validation"},
    ]
    examples = load_examples(rows)
    assert examples == [Example("a", "", "b", "train"), Example("c", "", "d", "validation")]
    save_jsonl(examples, tmp_path / "d.jsonl")
    assert from_jsonl(tmp_path / "d.jsonl") == examples
    assert load_examples(str(tmp_path / "d.jsonl")) == examples


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"instruction": "a"}', "non-empty"),
        ('{"instruction": "a", "output": "b", "split": "test"}', "split"),
        ("{oops", "not JSON"),
    ],
)
def test_bad_jsonl_lines_are_named(tmp_path, line, message):
    (tmp_path / "bad.jsonl").write_text(line + "\n")
    with pytest.raises(DataError, match=message):
        from_jsonl(tmp_path / "bad.jsonl")


def test_from_store_reads_included_pairs_scrubbed(db):
    now = "2024-01-01T00:00:00"
    rows = [
        ("Pay the bill", "", "My card is 4111 1111 1111 1111, thanks", "train", "ok"),
        ("Skip me", "", "Excluded", "train", "excluded"),
        ("Check", "Hello?", "Fine", "validation", "ok"),
    ]
    for i, (ins, ctx, out, split, status) in enumerate(rows, 1):
        db["pairs"].insert(
            {
                "id": i,
                "instruction": ins,
                "input": ctx,
                "output": out,
                "split": split,
                "status": status,
                "source": "imported",
                "created_at": now,
                "updated_at": now,
            }
        )
    examples = from_store(db)
    assert [e.instruction for e in examples] == ["Pay the bill", "Check"]
    assert "4111" not in examples[0].output  # the pairs feature's privacy scrub applies to training
    assert examples[1] == Example("Check", "Hello?", "Fine", "validation")


def test_batches_are_reproducible_complete_and_grouped_by_length():
    lengths = [(i * 37) % 101 + 5 for i in range(200)]
    plan = plan_batches(lengths, 4, seed=1, epoch=0)
    assert plan == plan_batches(lengths, 4, seed=1, epoch=0)
    assert plan != plan_batches(lengths, 4, seed=1, epoch=1)
    assert sorted(i for b in plan for i in b) == list(range(200))
    assert max(lengths[i] for i in plan[0]) == max(lengths)  # the longest batch first: fail early on memory

    def padding(batches):
        return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches)

    assert padding(plan) < padding(plan_batches(lengths, 4, seed=1, epoch=0, group=False)) / 3


def test_collate_pads_right_and_masks_padding():
    e1 = encode(TOK, Example("a", "", "bc"), "S", 100)
    e2 = encode(TOK, Example("abc", "", "defgh"), "S", 100)
    batch = collate([e1, e2], pad_id=0)
    assert batch["input_ids"].shape == (2, len(e2))
    assert batch["attention_mask"][0].sum() == len(e1)
    assert (batch["labels"][0, len(e1) :] == IGNORE).all()


def test_jsonl_snapshot_keeps_unicode(tmp_path):
    save_jsonl([Example("Grüße", "", "Liebe Grüße, Zoë")], tmp_path / "d.jsonl")
    assert json.loads((tmp_path / "d.jsonl").read_text(encoding="utf-8"))["output"] == "Liebe Grüße, Zoë"


def test_step_batches_deal_each_step_out_to_the_ranks():
    plan = [[i] for i in range(10)]  # ten batches in the epoch
    assert step_batches(plan, 0, grad_accum=2) == [[0], [1]]
    assert step_batches(plan, 4, grad_accum=2) == [[8], [9]]
    # Two DDP ranks: a step takes 4 batches, each rank two of them, none twice.
    assert step_batches(plan, 0, 2, world=2, rank=0) == [[0], [2]]
    assert step_batches(plan, 0, 2, world=2, rank=1) == [[1], [3]]
    # The epoch's last step: 2 batches left for 2 ranks, one each.
    assert step_batches(plan, 2, 2, world=2, rank=0) == [[8]] and step_batches(plan, 2, 2, 2, 1) == [[9]]
    # Three batches for two ranks: both run two micro-batches (DDP syncs each backward), rank 1 wraps.
    short = [[0], [1], [2]]
    assert step_batches(short, 0, 2, 2, 0) == [[0], [2]] and step_batches(short, 0, 2, 2, 1) == [[1], [0]]


class _NoSystemTemplate:
    """A tokenizer whose chat template refuses a system turn, as Gemma's does (jinja's raise_exception)."""

    def __init__(self, error: type[Exception] | None = None):
        self.error = error

    def apply_chat_template(self, msgs, tokenize=False, add_generation_prompt=False):
        if self.error is not None:
            raise self.error("a bug")
        if msgs[0]["role"] == "system":
            from jinja2 import TemplateError

            raise TemplateError("System role not supported")
        text = "".join(f"<{m['role']}>{m['content']}</{m['role']}>" for m in msgs)
        return text + ("<assistant>" if add_generation_prompt else "")


def test_a_template_without_a_system_turn_gets_the_system_text_in_the_user_turn():
    from trainer.data import _render

    msgs = [{"role": "system", "content": "Write as Ana."}, {"role": "user", "content": "Ask Bo."}]
    prompt, completion = _render(_NoSystemTemplate(), msgs, "Hi Bo")
    assert prompt == "<user>Write as Ana.\n\nAsk Bo.</user><assistant>" and completion == "Hi Bo</assistant>"


def test_a_bug_in_rendering_is_not_taken_for_a_template_without_a_system_turn():
    from trainer.data import _render

    msgs = [{"role": "system", "content": "Write as Ana."}, {"role": "user", "content": "Ask Bo."}]
    with pytest.raises(TypeError):
        _render(_NoSystemTemplate(TypeError), msgs, "Hi Bo")
