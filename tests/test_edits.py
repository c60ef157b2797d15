"""Corrections as training material: the supervised refresh, the labeller's examples, the preference pairs."""

from __future__ import annotations

import pytest
from paired import paired_store

from assistant.drafting.corrections import capture, list_corrections, set_excluded
from assistant.drafting.drafts import save_draft
from trainer.data import FROM_EDIT_WEIGHT, from_store, load_examples
from trainer.edits import labeller_examples, learnable, preference_pairs, rule_rejected, split
from trainer.pairs import list_pairs
from trainer.pairs.prompt import Request, load_prompt, with_user_examples
from trainer.pairs.split import VALIDATION
from trainer.prompts import write_prompts

MODEL_TEXT = "Hi Rosa,\n\nCould we move the review to Monday?\n\nBest regards,\nAlex"


def _correct(db, final: str, instruction: str = "ask Rosa to move the review", to: str = "rosa@example.org",
             model_text: str = MODEL_TEXT) -> int:  # fmt: skip
    draft_id = save_draft(db, instruction=instruction, reply=None, recipient=to, subject="", text=model_text,
                          model="m.gguf", adapter="", params={}, seconds=1.0, tokens=20)  # fmt: skip
    return capture(db, draft_id, final).id


@pytest.fixture
def paired(db, tmp_path):
    return paired_store(db, tmp_path)


def test_corrections_join_training_weighted_and_marked_with_the_newest_tenth_held_out(paired):
    pairs = [e for e in load_examples(paired) if e.source != "from_edit"]
    for n in range(20):
        _correct(paired, f"Rosa, Monday {n} works better for the review. Alex", f"ask Rosa for Monday {n}")
    examples = from_store(paired)
    edits = [e for e in examples if e.source == "from_edit"]
    assert len(examples) == len(pairs) + len(edits)
    assert len(edits) == 18 * FROM_EDIT_WEIGHT  # 20 less the newest two, held out
    assert {e.split for e in edits} == {"train"} and {e.recipient for e in edits} == {"rosa@example.org"}
    _learn, held = split(paired)
    held_texts = {c.final_text for c in held}
    assert len(held) == 2 and not held_texts & {e.output for e in edits}


def test_excluded_corrections_and_validation_mail_never_train(paired):
    validation = next(p for p in list_pairs(paired) if p.split == VALIDATION)
    leaked = _correct(paired, validation.output)  # the edited draft was sent, then imported with the Sent folder
    kept = _correct(paired, "Rosa, Monday suits me better. Alex")
    gone = _correct(paired, "Rosa, can we talk Monday? Alex")
    set_excluded(paired, [gone], True)
    assert [c.id for c in learnable(paired)] == [kept]
    outputs = {e.output for e in from_store(paired) if e.source == "from_edit"}
    assert validation.output not in outputs and leaked not in [c.id for c in learnable(paired)]
    assert labeller_examples(paired) == [("Rosa, Monday suits me better. Alex", "ask Rosa to move the review")]


def test_the_labeller_is_shown_the_users_own_instructions_last(paired):
    _correct(paired, "Rosa, the review on Monday please, Friday is full. Alex", "rosa: review monday not friday")
    prompt = with_user_examples(load_prompt(), labeller_examples(paired))
    shipped = load_prompt()
    assert prompt.examples[: len(shipped.examples)] == shipped.examples
    email, instruction = prompt.examples[-1]
    assert instruction == "rosa: review monday not friday" and "Friday is full" in email
    messages = prompt.messages(Request(to="Priya", subject="Budget", body="The numbers are in."))
    assert messages[-2] == {"role": "assistant", "content": "rosa: review monday not friday"}
    assert with_user_examples(shipped, []) is shipped


def test_a_corrections_prompt_names_its_recipient_as_drafting_did(paired):
    _correct(paired, "Monday instead of Friday? Alex", "move the review", to="zoe.quill@example.org")
    (edit, *_) = [e for e in from_store(paired) if e.source == "from_edit"]
    (written,) = write_prompts(paired, [edit], count_tokens=lambda t: len(t.split()), max_seq_len=4096,
                               examples_probability=0.0, seed=1)  # fmt: skip
    assert "zoe.quill@example.org" in written.messages[-1]["content"]


def test_preference_pairs_come_from_changed_words_and_rule_made_ones_only_when_asked(db):
    rewritten = _correct(db, "Rosa - Monday instead? Friday is gone. A.")
    _correct(db, MODEL_TEXT)  # accepted as written
    _correct(db, MODEL_TEXT.replace("\n\n", "\n\n\n"))  # spacing only: no pair
    found = preference_pairs(list_corrections(db))
    assert [(p.correction_id, p.made_by) for p in found] == [(rewritten, "edit")]
    assert found[0].chosen.startswith("Rosa - Monday") and found[0].rejected == MODEL_TEXT
    with_rules = preference_pairs(list_corrections(db), rule_made=True)
    made = {p.made_by for p in with_rules if p.made_by != "edit"}
    assert made == {"doubled", "placeholder", "greeting", "signoff"}
    assert all(p.chosen != p.rejected for p in with_rules)


def test_the_validation_split_is_named_as_the_pairs_name_it():
    from trainer import edits

    assert edits.VALIDATION == VALIDATION


def test_rule_made_rejections_differ_from_the_text_they_are_made_from():
    for why, text in rule_rejected(MODEL_TEXT):
        assert text != MODEL_TEXT, why
    assert rule_rejected("ok") == []
