"""Training examples are written with the drafting prompt: same texts, recipient, reply block, length; style
examples for a share of them, never the email trained on, its thread or validation mail; the adapter keeps
the prompt it was trained with and drafting uses it."""

from __future__ import annotations

import json
import re

import pytest
from fakes import FakeBackend
from paired import paired_store

from assistant.drafting import draft
from assistant.drafting.length import of_email
from assistant.drafting.prompting import adapter_texts, draft_texts, texts_to_json
from trainer.data import Example, from_jsonl, load_examples, save_jsonl
from trainer.pairs import list_pairs
from trainer.pairs.split import VALIDATION
from trainer.prompts import held_out_ids, reply_context, request_for, write_prompts


@pytest.fixture
def paired(db, tmp_path):
    return paired_store(db, tmp_path)


def words(text: str) -> int:
    return len(text.split())


def written(db, probability=1.0, seed=1, n_ctx=4096):
    examples = load_examples(db)
    return write_prompts(db, examples, count_tokens=words, max_seq_len=n_ctx, examples_probability=probability,
                         seed=seed)  # fmt: skip


def test_a_training_prompt_is_the_prompt_drafting_writes_for_the_same_request(paired):
    examples = written(paired)
    held = held_out_ids(paired)
    checked = 0
    for example in examples:
        request = request_for(paired, example.message_id, example.input)
        fake = FakeBackend()
        draft(paired, example.instruction, reply_context=request.reply, to=request.to, backend=fake, save=False,
              length=None, exclude_examples=(*held, *request.own))  # fmt: skip
        drafted = fake.prompts[0]
        # The same turns and texts; only the length line differs (training says the email's own length).
        assert [m["role"] for m in example.messages] == [m["role"] for m in drafted]
        length = f"Length: {of_email(example.output).guidance}"
        assert length in example.messages[-1]["content"]
        strip = re.compile(r"Length: about \d+ words")
        assert strip.sub("", example.messages[-1]["content"]) == strip.sub("", drafted[-1]["content"])
        assert example.messages[:-1] == drafted[:-1]
        checked += 1
    assert checked >= 20
    replies = [e for e in examples if e.input]
    assert replies and all("<email>" in e.messages[-1]["content"] for e in replies)


def test_a_reply_drafted_from_the_stored_email_is_asked_as_training_asked_it(paired):
    from assistant.drafting.prompting import reply_from_store

    def line(name: str, text: str) -> str:
        return re.search(rf"^{name}: .*$", text, re.M).group(0)

    length = re.compile(r"Length: about \d+ words")
    replies = [e for e in written(paired) if e.input][:5]
    assert replies
    for example in replies:
        answered = paired.execute("SELECT in_reply_to FROM messages WHERE message_id = ?",
                                  [example.message_id]).fetchone()[0]  # fmt: skip
        fake = FakeBackend()
        draft(paired, example.instruction, reply_context=reply_from_store(paired, answered), backend=fake, save=False,
              length=None)  # fmt: skip
        drafted, trained = fake.prompts[0][-1]["content"], example.messages[-1]["content"]
        # The sender by name only; the recipient with the address; the date the email was sent.
        assert line("From", drafted) == line("From", trained) and "@" not in line("From", drafted), drafted
        assert "@" in line("Recipient", trained) and line("Date", trained) != "Date: ", trained
        assert length.sub("", drafted) == length.sub("", trained)


def test_a_long_email_answered_is_trained_on_as_drafting_shows_it(db, tmp_path):
    """A pair keeps the first INPUT_CHARS of the email it answers, for the labeller; training shows what the
    store holds, as a draft's prompt does: whole where it fits, cut with the notice where it does not."""
    import mailgen as gen
    from paired import Labeller

    from assistant.drafting.prompting import reply_from_store
    from assistant.importer import import_paths
    from trainer.pairs import build_pairs
    from trainer.pairs.build import INPUT_CHARS

    path = tmp_path / "mail.mbox"
    gen.write_mbox(path, gen.generate_messages(160, seed=5))
    import_paths(db, [path], me=[gen.ME_ADDR])
    tail = "\n\n".join(f"Point {i}: the figures for part {i} are in the sheet, row {i * 7}." for i in range(1, 41))
    db.execute("UPDATE messages SET body = body || ? WHERE message_id IN "
               "(SELECT in_reply_to FROM messages WHERE sent_by_me = 1)", ["\n\n" + tail])  # fmt: skip
    db.conn.commit()
    build_pairs(db, Labeller(), limit=None)
    assert len(tail) > INPUT_CHARS

    def answered(example):
        return db.execute("SELECT in_reply_to FROM messages WHERE message_id = ?",
                          [example.message_id]).fetchone()[0]  # fmt: skip

    length = re.compile(r"Length: about \d+ words")
    replies = [e for e in written(db) if e.input]
    assert replies and not any("row 280." in e.input for e in replies)  # the pair's text is cut
    for example in replies[:5]:
        fake = FakeBackend()
        draft(db, example.instruction, reply_context=reply_from_store(db, answered(example)), backend=fake,
              save=False, length=None)  # fmt: skip
        trained = example.messages[-1]["content"]
        assert "row 280." in trained and "cut to fit" not in trained, trained  # all of it: it fits
        assert length.sub("", fake.prompts[0][-1]["content"]) == length.sub("", trained)
    tight = [e for e in written(db, n_ctx=400, probability=0.0) if e.input]
    assert tight
    for example in tight[:5]:
        trained = example.messages[-1]["content"]
        assert "[... the rest of this email was cut to fit ...]" in trained, trained
        assert "row 280." not in trained and "Only the beginning of it is shown" in trained
    # An email of the user's too long for any prompt at this length is written with the pair's cut of the email
    # answered, as before: the stored email whole would leave it no room, and it would be skipped.
    unfitted = [e for e in written(db, n_ctx=20, probability=0.0) if e.input]
    assert unfitted
    for example in unfitted[:5]:
        trained = example.messages[-1]["content"]
        assert reply_context(example.input).body in trained and "row 280." not in trained, trained


def test_retrieval_never_shows_the_email_its_thread_or_validation_mail(paired):
    held = set(held_out_ids(paired))
    validation = [p.output.strip() for p in list_pairs(paired, split=VALIDATION)]
    assert validation
    for example in written(paired):
        request = request_for(paired, example.message_id, example.input)
        shown = [m["content"].strip() for m in example.messages[1:-1] if m["role"] == "assistant"]
        assert example.output.strip() not in shown
        marks = ",".join("?" * len(request.own))
        own = {r[0] for r in paired.execute(f"SELECT body FROM messages WHERE id IN ({marks})", request.own)}
        assert not own & set(shown) and not set(validation) & set(shown)
    assert held


def test_a_share_of_examples_is_shown_with_past_emails_the_same_way_each_time(paired):
    def with_examples(examples):
        return [len(e.messages) > 2 for e in examples]

    half = with_examples(written(paired, probability=0.5))
    assert 0.3 < sum(half) / len(half) < 0.7
    assert with_examples(written(paired, probability=0.5)) == half  # the same seed, the same prompts
    assert not any(with_examples(written(paired, probability=0.0)))
    assert with_examples(written(paired, probability=0.5, seed=2)) != half


def test_the_prompt_fits_the_training_length_with_the_email(paired):
    for example in written(paired, n_ctx=256):
        prompt = sum(words(m["content"]) for m in example.messages)
        assert prompt + words(example.output) <= 256 + 48 or len(example.messages) == 2


def test_written_prompts_survive_the_runs_data_file(paired, tmp_path):
    examples = written(paired, probability=0.5)
    save_jsonl(examples, tmp_path / "data.jsonl")
    again = from_jsonl(tmp_path / "data.jsonl")
    assert [e.messages for e in again] == [e.messages for e in examples]
    assert [e.message_id for e in again] == [e.message_id for e in examples]
    plain = Example("Ask Bob", "", "Hi Bob")
    save_jsonl([plain], tmp_path / "plain.jsonl")
    assert from_jsonl(tmp_path / "plain.jsonl") == [plain] and from_jsonl(tmp_path / "plain.jsonl")[0].messages is None


def test_drafting_with_an_adapter_uses_the_prompt_it_was_trained_with(tmp_path):
    texts = draft_texts()
    changed = dict(texts)
    changed["draft_system"] = type(texts["draft_system"])("draft_system", 99, "You ghostwrite for {me}.\n{habits}")
    folder = tmp_path / "adapters" / "mine"
    folder.mkdir(parents=True)
    (folder / "adapter.gguf").write_bytes(b"")
    (folder / "adapter_config.json").write_text(json.dumps({"prompt": {"kind": "draft",
                                                                       "texts": texts_to_json(changed)}}))  # fmt: skip
    assert adapter_texts(folder / "adapter.gguf")["draft_system"].version == 99
    legacy = tmp_path / "old"
    legacy.mkdir()
    (legacy / "adapter_config.json").write_text(json.dumps({"prompt": {"system": "x", "user": "y", "reply": "z"}}))
    assert adapter_texts(legacy / "adapter.gguf") is None and adapter_texts(None) is None


def test_tokens_are_counted_with_the_bases_vocabulary_and_nothing_is_printed(capfd):
    from llama_cpp import Llama

    from assistant.drafting.models import embedded_model_path
    from trainer.prompts import token_counter

    path = str(embedded_model_path())
    count = token_counter(path)
    text = "Hi Ana,\n\nthe review moved to Friday <|im_start|> — see you then.\n\nBest,\nJeff"
    llm = Llama(model_path=path, vocab_only=True, verbose=False)
    capfd.readouterr()
    assert count(text) == len(llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)) > 10
    count = token_counter(path)
    assert capfd.readouterr() == ("", "")  # no llama.cpp warning in the middle of `train`'s output
