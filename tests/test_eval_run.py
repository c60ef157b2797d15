"""Running evaluations on the fake backend: no leakage, nothing saved as a user draft, resume, ablations, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakes import FakeBackend
from gguf import GGUFWriter
from paired import bag_of_words, paired_store

from assistant.drafting import draft
from assistant.errors import Cancelled
from assistant.store.adapters import AdapterError
from trainer.evaluation import EvalError, evaluate, list_evals, run_ablations
from trainer.evaluation.run import held_out_ids, validation_pairs
from trainer.pairs import Pair, edit_instruction, list_pairs, set_status
from trainer.prompts import reply_context


@pytest.fixture
def paired(db, tmp_path):
    paired_store(db, tmp_path)
    assert len(validation_pairs(db)) >= 4
    return db


def root_of(db) -> Path:
    return Path(db.execute("PRAGMA database_list").fetchone()[2]).parent


def run(db, **options):
    options = {"adapter": None, "examples": True, "limit": None, "embed": bag_of_words, **options}
    return evaluate(db, root_of(db), **options)


def write_adapter(path: Path) -> Path:
    w = GGUFWriter(str(path), "llama")
    w.add_type("adapter")
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_style_examples_never_show_a_validation_email(paired):
    """The instruction names words of its own email, so retrieval would pick that email first if allowed."""
    target = validation_pairs(paired)[0]
    words = [w.strip(".,!?") for w in target.output.split() if len(w) > 6][:5]
    edit_instruction(paired, target.id, "Write about " + " ".join(words))
    own_id = paired.execute("SELECT id FROM messages WHERE message_id = ?", [target.message_id]).fetchone()[0]
    plain = draft(paired, "Write about " + " ".join(words), backend=FakeBackend(), save=False)
    assert own_id in plain.examples  # without the exclusion, the held-out email itself is the best example

    fake = FakeBackend()
    result = run(paired, backend=fake)
    held_out = set(held_out_ids(paired))
    validation = {p.message_id for p in list_pairs(paired, split="validation")}
    validation_rows = {r[0] for r in paired.execute("SELECT id, message_id FROM messages") if r[1] in validation}
    assert own_id in held_out and validation_rows <= held_out
    shown = {i for item in result.rows[0].items for i in item["examples"]}
    assert shown and not shown & held_out
    outputs = [p.output.strip() for p in list_pairs(paired, split="validation")]
    for prompt in fake.prompts:
        examples = [m["content"] for m in prompt[1:-1] if m["role"] == "assistant"]
        assert examples and not any(e.strip() in outputs for e in examples)


def test_eval_drafts_are_not_saved_as_drafts_and_use_the_seed(paired):
    fake = FakeBackend()
    result = run(paired, backend=fake, seed=7, examples=False)
    assert paired["drafts"].count == 0
    assert {p.seed for p in fake.params} == {7}
    assert all(len(prompt) == 2 for prompt in fake.prompts)  # --no-examples: system + request only
    assert result.metrics["n"] == len(validation_pairs(paired))
    assert set(result.metrics) >= {"bleu", "sacrebleu", "chrf", "rouge_l", "mauve", "length_ratio",
                                   "verbatim_overlap", "intervals", "warnings"}  # fmt: skip


def test_reply_context_from_the_pair_input(paired):
    with_input = next(p for p in validation_pairs(paired) + list_pairs(paired) if p.input)
    context = reply_context(with_input.input)
    head = with_input.input.split("\n\n", 1)[0]
    assert context is not None and f"From: {context.sender_name}" in head and f"Subject: {context.subject}" in head
    assert context.body and context.body in with_input.input and "Subject:" not in context.body
    free = Pair(id=1, instruction="x", input="Can you send the deck?\n\nThanks", output="y", split="validation",
                status="ok", source="imported", flags=[], scrubbed={})  # fmt: skip
    assert (
        reply_context(free.input).body == "Can you send the deck?\n\nThanks"
        and reply_context(free.input).sender_name == ""
    )
    mailbox = FakeBackend()
    run(paired, backend=mailbox, examples=False)
    asked = [prompt[-1]["content"] for prompt in mailbox.prompts]
    answered = [p for p in validation_pairs(paired) if p.input]
    assert answered and all(any(reply_context(p.input).body[:60] in a for a in asked) for p in answered)


def test_a_stopped_evaluation_resumes_from_its_drafts(paired):
    total = len(validation_pairs(paired))
    seen = []

    def stop_after_two():
        return len(seen) >= 2

    first = FakeBackend()
    with pytest.raises(Cancelled):
        run(paired, backend=first, progress=lambda p: seen.append(p.done) if p.phase == "draft" and p.done else None,
            cancel=stop_after_two)  # fmt: skip
    assert paired["eval_drafts"].count == 2 and len(first.prompts) == 2
    second = FakeBackend()
    result = run(paired, backend=second)
    row = result.rows[0]
    assert (row.cached, row.generated) == (2, total - 2) and len(second.prompts) == total - 2
    assert [it["draft"] for it in row.items[:2]] == ["Reply 1", "Reply 2"]  # the first run's drafts, kept
    edited = validation_pairs(paired)[0]
    edit_instruction(paired, edited.id, "Ask about the invoice total")
    third = run(paired, backend=FakeBackend())
    assert (third.rows[0].cached, third.rows[0].generated) == (total - 1, 1)
    other_seed = run(paired, backend=FakeBackend(), seed=1)
    assert other_seed.rows[0].generated == total  # another configuration shares nothing


def test_progress_reports_done_total_and_eta(paired):
    events = []
    run(paired, backend=FakeBackend(), progress=events.append, limit=3)
    drafting = [e for e in events if e.phase == "draft"]
    assert [e.done for e in drafting] == [0, 1, 2, 3] and {e.total for e in drafting} == {3}
    assert drafting[0].eta is None and drafting[1].eta is not None and drafting[-1].eta == 0
    assert {"embedding", "mauve interval", "report"} <= {e.phase for e in events}


def test_report_is_written_and_recorded(paired):
    root = root_of(paired)
    result = run(paired, backend=FakeBackend(), limit=2)
    assert result.json_path.parent.parent == root / "eval" and result.html_path.is_file()
    data = json.loads(result.json_path.read_text())
    assert data["n"] == 2 and len(data["rows"][0]["items"]) == 2 and data["rows"][0]["metrics"] == result.metrics
    assert oct(result.json_path.stat().st_mode & 0o777) == "0o600"
    [listed] = list_evals(paired, root)
    assert listed["id"] == result.eval_id and listed["html_path"] == str(result.html_path)
    assert listed["metrics"]["base + examples"]["bleu"] == result.metrics["bleu"]


def test_ablations_without_an_adapter_skip_its_rows(paired):
    result = run_ablations(paired, root_of(paired), limit=2, backend=FakeBackend(), embed=bag_of_words)
    assert [r.label for r in result.rows] == ["base", "base + examples"]
    assert set(result.metrics) == {"base", "base + examples"}
    assert any("adapter rows are skipped" in n for n in result.notices)


def test_ablations_with_an_adapter_and_its_report_folder(paired, tmp_path):
    root = root_of(paired)
    paired["adapters"].insert({"name": "mine", "path": str(write_adapter(tmp_path / "lora.gguf")),
                               "created_at": "2024-01-01T00:00:00+00:00"})  # fmt: skip
    fake = FakeBackend()
    result = run_ablations(paired, root, limit=2, backend=fake, embed=bag_of_words)
    assert [r.label for r in result.rows] == ["base", "base + examples", "mine", "mine + examples"]
    assert [s.lora_path for s in fake.configured][-1] == str(tmp_path / "lora.gguf")
    assert result.html_path.parent.parent == root / "adapters" / "mine" / "eval"
    single = run(paired, adapter="mine", backend=FakeBackend(), limit=2)
    assert single.rows[0].cached == 2  # the ablation's adapter + examples drafts are reused


def test_user_errors(db, paired):
    with pytest.raises(AdapterError, match="No adapter named 'nope'"):
        run(paired, adapter="nope", backend=FakeBackend())
    for p in list_pairs(paired, split="validation"):
        set_status(paired, p.id, "excluded")
    with pytest.raises(EvalError, match="validation split is empty"):
        run(paired, backend=FakeBackend())


def test_no_pairs_yet(db):
    with pytest.raises(EvalError, match="no training pairs yet: build them from your sent mail"):
        evaluate(db, root_of(db), adapter=None, examples=True, limit=None, backend=FakeBackend())


def test_the_held_out_edits_are_drafted_and_scored_against_the_kept_texts(paired):
    from assistant.drafting.corrections import capture
    from assistant.drafting.drafts import save_draft

    kept = []
    for n in range(20):  # the newest two are held out
        draft_id = save_draft(paired, instruction=f"tell Rosa about plan {n}", reply=None, recipient="rosa@x.org",
                              subject="", text="Hi Rosa,\n\nA plan.\n\nAlex", model="m.gguf", adapter="", params={},
                              seconds=1.0, tokens=9)  # fmt: skip
        kept.append(capture(paired, draft_id, f"Rosa, plan {n} is on for Monday. Alex").final_text)
    fake = FakeBackend()
    fake.enqueue(*["Reply"] * len(validation_pairs(paired)), "Rosa, plan 18 is on for Monday. Alex",
                 "Something else entirely")  # fmt: skip
    result = run(paired, backend=fake, examples=False)
    edits = result.metrics["edits"]
    assert edits["n"] == 2 and 0 < edits["bleu"] < 1 and 0 < edits["chrf"] < 1
    asked = [p[-1]["content"] for p in fake.prompts[-2:]]
    assert "plan 18" in asked[0] and "plan 19" in asked[1]
    assert "Your edits" in result.html_path.read_text() and paired["drafts"].count == 20  # none saved


def test_without_edits_the_report_has_no_edits_section(paired):
    result = run(paired, backend=FakeBackend(), limit=1)
    assert "edits" not in result.metrics and "Your edits" not in result.html_path.read_text()
