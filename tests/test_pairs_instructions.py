"""Reverse instructions: the prompt file, cleaning and checking answers, retries and the fallback."""

from __future__ import annotations

import pytest

from assistant.drafting.backend import FakeBackend
from trainer.pairs.instructions import clean, fallback, problem, write_instruction
from trainer.pairs.prompt import Request, cut, load_prompt, parse_prompt

EMAIL = (
    "Hi Rosa,\n\nThe kitchen sink is leaking again since the weekend. Could the plumber come on Tuesday "
    "afternoon? I work from home that day.\n\nThanks,\nAlex"
)
REQ = Request("Rosa Alvarez", "Kitchen sink", EMAIL)


def test_the_shipped_prompt_loads_and_puts_the_email_last():
    prompt = load_prompt()
    assert prompt.version >= 1 and len(prompt.examples) >= 3
    messages = prompt.messages(Request("Rosa", "Sink", EMAIL, "Rosa", "Is Tuesday ok for the plumber?"))
    assert messages[0]["role"] == "system"
    assert messages[:-1] == prompt.prefix()  # the shared part first: llama.cpp reuses its KV cache
    last = messages[-1]["content"]
    assert last.endswith("I work from home that day.")  # greeting and sign-off are not shown
    assert "Hi Rosa" not in last and 'It answers this email from Rosa: "Is Tuesday ok' in last
    other = prompt.messages(Request("Kenji", "Budget", "Hi Kenji,\n\nThe budget is done.\n\nAlex"))
    assert other[:-1] == messages[:-1]


def test_long_emails_are_cut_to_fit_the_context():
    prompt = load_prompt()
    long = Request("Rosa", "Essay", "word " * 3000)
    assert len(prompt.messages(long)[-1]["content"]) < 2700
    backend = FakeBackend()  # counts words as tokens
    fitted = prompt.messages(long, backend.count_tokens, budget=700)
    assert sum(backend.count_tokens(m["content"]) for m in fitted) <= 700


@pytest.mark.parametrize(
    "raw",
    ['"Broken', "[system]\nx\n[request]\ny", "# version: 1\n[system]\ns\n[email]\ne\n[context]\nc\n[request]\nr"],
)
def test_malformed_prompt_files_are_refused(raw):
    with pytest.raises(ValueError):
        parse_prompt("bad", raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Instruction: Ask Rosa if the plumber can come on Tuesday.", "Ask Rosa if the plumber can come on Tuesday."),
        ('"Politely ask Rosa about the plumber on Tuesday."\nMore text', "Ask Rosa about the plumber on Tuesday."),
        ("Write a short email to Rosa asking if the plumber can come Tuesday.",
         "Ask Rosa if the plumber can come Tuesday."),
        ("Please tell Kenji in a friendly tone that the budget is done.", "Tell Kenji that the budget is done."),
        ("  - **Answer:** Thank Grace warmly for the notes.", "Thank Grace for the notes."),
        ("Sure! Here is the instruction: Remind Sam about invoice 2291.", "Remind Sam about invoice 2291."),
        ("Share the design doc today. If you have questions, let me know.", "Share the design doc today."),
        ("Ask Rosa about Monday. Mention the key is under the mat.",) * 2,
        ("Thank Oliver for invoice INV-9913, thank you.", "Thank Oliver for invoice INV-9913."),
        ("Thank Lucas for the invoice. Thank you again for the quick turnaround.", "Thank Lucas for the invoice."),
    ],
)  # fmt: skip
def test_clean(raw, expected):
    assert clean(raw) == expected


@pytest.mark.parametrize(
    ("instruction", "reason"),
    [
        ("", "empty"),
        ("Hi Rosa,", "not_imperative"),
        ("The sink is leaking.", "not_imperative"),
        ("Ask Rosa.", "too_short"),
        ("Ask " + "Rosa and " * 30 + "the plumber.", "too_long"),
        ("Tell Rosa the kitchen sink is leaking again since the weekend. Could the plumber come on Tuesday", "copy"),
        ("Ask Rosa whether the plumber can fix the dripping faucet on Tuesday.", "example_leak"),
        ("Ask Rosa if the plumber can fix the leaking sink on Tuesday afternoon; I work from home.", None),
    ],
)
def test_problem(instruction, reason):
    assert problem(instruction, REQ, load_prompt()) == reason


def test_a_good_answer_is_taken_at_once():
    backend = FakeBackend(["Ask Rosa if the plumber can fix the leaking sink on Tuesday afternoon."])
    got = write_instruction(backend, load_prompt(), REQ, seed=1)
    assert got.text == "Ask Rosa if the plumber can fix the leaking sink on Tuesday afternoon."
    assert got.tries == 1 and got.flags == [] and len(backend.prompts) == 1
    assert backend.params[0].stop == ("\n",) and backend.params[0].seed == 1


def test_bad_answers_are_retried_with_other_seeds():
    backend = FakeBackend(
        ["Hi Rosa,", "The sink is leaking again since the weekend.", "Ask Rosa for a plumber visit on Tuesday."]
    )
    got = write_instruction(backend, load_prompt(), REQ, seed=5)
    assert got.text == "Ask Rosa for a plumber visit on Tuesday."
    assert got.tries == 3 and got.rejected == ["not_imperative", "not_imperative"] and got.flags == ["retried"]
    assert len({p.seed for p in backend.params}) == 3
    assert backend.prompts[0] == backend.prompts[2]  # the same prompt: a retry re-reads nothing


def test_hopeless_answers_are_cut_after_two_words():
    backend = FakeBackend(["Hi Rosa, " + "blah " * 60, "Ask Rosa for a plumber visit on Tuesday afternoon."])
    got = write_instruction(backend, load_prompt(), REQ, seed=5)
    assert got.tries == 2 and got.completion_tokens < 15  # not the 60 words of the first answer


def test_when_every_try_fails_the_fallback_is_used_and_flagged():
    backend = FakeBackend(["Hi Rosa,"] * 4)
    got = write_instruction(backend, load_prompt(), REQ, seed=5, tries=4)
    assert "fallback" in got.flags and got.tries == 4
    assert got.text == "Write to Rosa about \"Kitchen sink\": The kitchen sink is leaking again since the weekend " \
        "and ask: Could the plumber come on Tuesday afternoon?"  # fmt: skip


def test_fallback_shapes():
    thanks = Request("Ravi Shah", "Invoice", "Hi Ravi,\n\nThanks for sending invoice INV-4028. I passed it on.\n\nAlex")
    assert fallback(thanks) == "Thank Ravi for sending invoice INV-4028."
    reply = Request("Raman, Priya and Marcus Webb and Sam Lee", "Re: Q3", "Looks good to me, ship it.\n\nAlex",
                    "Priya", "Can we ship?")  # fmt: skip
    assert fallback(reply).startswith('Reply to Raman and the others about "Q3": Looks good to me')
    assert fallback(Request("", "", "Short one here.")) == "Write to them: Short one here."


def test_cut_ends_at_a_sentence():
    text = "First sentence here. Second sentence is longer than the rest of it. Third."
    assert cut(text, 30) == "First sentence here. …"
    assert cut(text, 45) == "First sentence here. Second sentence is longe …"  # no end near enough
    assert cut("short", 45) == "short"


# --- subjects as the labeller sees them -------------------------------------------------------------------


def test_the_labeller_sees_the_subject_without_reply_chains_or_tags():
    cluttered = Request("Rosa Alvarez", "[List] Re: [EXTERN] Re: Re: Kitchen sink", EMAIL)
    request = load_prompt().messages(cluttered)[-1]["content"]
    assert 'subject "Kitchen sink":' in request and "Re:" not in request and "[" not in request
    # The fallback sees through the clutter: the same instruction as for a plain reply about the same subject.
    assert fallback(cluttered) == fallback(Request("Rosa Alvarez", "Re: Kitchen sink", EMAIL))
    only_tags = Request("Rosa Alvarez", "[List] Fwd: [EXTERN]", EMAIL)
    assert 'subject "(no subject)":' in load_prompt().messages(only_tags)[-1]["content"]
    assert fallback(only_tags) == fallback(Request("Rosa Alvarez", "", EMAIL))  # no topic rather than a tag


def shown_subject(messages) -> str:
    request = messages[-1]["content"]
    return request.split('subject "', 1)[1].split('":', 1)[0]


class EchoLabeller(FakeBackend):
    """Answers with an instruction naming the subject the prompt shows: clutter there would show here."""

    def stream(self, messages, params, cancel=None):
        self.enqueue(f"Tell them about {shown_subject(messages)} now.")
        yield from super().stream(messages, params, cancel)


@pytest.mark.parametrize("labeller", [EchoLabeller, FakeBackend])  # FakeBackend: every answer fails, fallbacks
def test_pairs_built_from_cluttered_mail_carry_no_reply_chain_or_list_tag(db, tmp_path, labeller):
    from cluttered import LEFTOVER, write_cluttered_mbox

    from assistant.importer import import_paths
    from assistant.mail import generate as gen
    from assistant.mail.subjects import prompt_subject
    from trainer.pairs import build_pairs, list_pairs

    import_paths(db, [write_cluttered_mbox(tmp_path / "mail.mbox")], me=[gen.ME_ADDR])
    backend = labeller()
    report = build_pairs(db, backend, limit=None, tries=1)
    pairs = list_pairs(db)
    assert report.built == len(pairs) > 20 and any(p.input for p in pairs)
    prefix = load_prompt().prefix()  # the prompt's own worked examples, the same for every email
    for prompt in backend.prompts:
        assert prompt[: len(prefix)] == prefix
        for message in prompt[len(prefix) :]:
            assert not LEFTOVER.search(message["content"]), message["content"]
    for pair in pairs:
        assert not LEFTOVER.search(pair.instruction) and not LEFTOVER.search(pair.input), pair
    stored = dict(db.execute("SELECT message_id, subject FROM messages").fetchall())
    assert all(stored[p.message_id].startswith(("[", "*", "R", "A")) for p in pairs)  # the store keeps them as sent
    # What the model was shown is each email's real subject.
    assert {shown_subject(m) for m in backend.prompts} == {
        prompt_subject(stored[p.message_id]) or "(no subject)" for p in pairs
    }
