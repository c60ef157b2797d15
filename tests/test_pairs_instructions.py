"""Reverse instructions: the prompt file, cleaning and checking answers, retries and the fallback."""

from __future__ import annotations

import pytest
from fakes import FakeBackend

from trainer.pairs.instructions import VERBS, clean, fallback, grammar, problem, start, write_instruction
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
        ("Tell Colleague that the copies went out there.Jeff", "Tell Colleague that the copies went out there."),
        ("Tell Bo about the weekend of Dec. 16th. Hi there", "Tell Bo about the weekend of Dec. 16th."),
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
        # A run of 8 words of the email is a copy, however long the instruction around it.
        ("Tell Rosa, who asked on the phone, that the kitchen sink is leaking again since the weekend.", "copy"),
        ("Tell Rosa that.", "too_short"),  # the forced start and nothing after it
        ("Ask Rosa to a plumber visit on Tuesday afternoon.", "garbled"),
        ("Tell Rosa about are the plumber visits on Tuesday.", "garbled"),  # "about" then "are"
        ("Apologize to Rosa that the plumber comes late on Tuesday.", None),
        ("Invite Rosa, I'm glad to hear about your kitchen.", "email_voice"),  # the email, not an order
        ("Invite Rosa and thank you for the plumber.", "email_voice"),
        ('Tell Rosa about the sink, email to Rosa: "Hi Rosa, the sink leaks again.', "quoted"),
        ("Ask Rosa whether the electrician can rewire the garage lights.", "unsupported"),  # not in the email
        ("Ask Rosa if the plumber can come at 7 on Tuesday afternoon.", "unsupported"),  # a number it lacks
        ("Tell Rosa that the sink leaks again and ask whether a plumber could come Tuesday.", None),
    ],
)
def test_problem(instruction, reason):
    assert problem(instruction, REQ, load_prompt()) == reason


def test_a_good_answer_is_taken_at_once():
    backend = FakeBackend(["Ask Rosa if the plumber can fix the leaking sink on Tuesday afternoon."])
    got = write_instruction(backend, load_prompt(), REQ, seed=1)
    assert got.text == "Ask Rosa if the plumber can fix the leaking sink on Tuesday afternoon."
    assert got.tries == 1 and got.flags == [] and got.method == "model" and len(backend.prompts) == 1
    assert backend.params[0].stop == ("\n",) and backend.params[0].seed == 1 and backend.params[0].grammar is None


def test_an_instruction_that_fails_a_check_is_retried_free_with_another_seed():
    copied = "Tell Rosa the kitchen sink is leaking again since the weekend and ask about Tuesday."
    backend = FakeBackend([copied, "Ask Rosa for a plumber visit on Tuesday."])
    got = write_instruction(backend, load_prompt(), REQ, seed=5)
    assert got.text == "Ask Rosa for a plumber visit on Tuesday."
    assert (got.tries, got.rejected, got.method, got.flags) == (2, ["copy"], "retried", ["retried"])
    assert [p.grammar for p in backend.params] == [None, None] and backend.params[0].seed != backend.params[1].seed
    assert backend.prompts[0] == backend.prompts[1]  # the same prompt: a retry re-reads nothing


def test_an_answer_that_is_no_instruction_goes_on_to_a_forced_start():
    backend = FakeBackend(["Hi Rosa,", "Ask Rosa whether the plumber can fix the sink on Tuesday afternoon."])
    got = write_instruction(backend, load_prompt(), REQ, seed=5)
    assert got.text == "Ask Rosa whether the plumber can fix the sink on Tuesday afternoon."
    assert (got.method, got.flags, got.rejected) == ("grammar", ["retried", "grammar"], ["not_imperative"])
    assert backend.params[0].grammar is None and backend.params[1].grammar == grammar("Ask Rosa", REQ)
    assert backend.prompts[0] == backend.prompts[1]  # the start is forced by the grammar, not by another prompt


def test_forced_starts_follow_the_kind_of_email():
    thanks = Request("Ravi Shah", "Invoice", "Thanks so much for the invoice. I passed it on.")
    news = Request("Kenji Watanabe and Leila Haddad", "Launch", "The launch slips a week.\n\nAlex")
    assert (start(REQ), start(thanks), start(news)) == ("Ask Rosa", "Thank Ravi", "Tell Kenji and Leila")
    assert grammar("Thank Ravi", thanks) == 'root ::= "Thank Ravi" (" for ") [^\\n]+\n'
    # After "Ask NAME to" comes a verb: a lower-case letter, not the author's name ("Ask Bo to Jeff: sorry").
    assert '" to " [a-z]' in grammar("Ask Rosa", REQ) and '" whether "' in grammar("Ask Rosa", REQ)
    any_verb = grammar("", news)
    assert any_verb.startswith('root ::= ("Tell" | "Ask" | ') and '" Kenji and Leila " [a-z]' in any_verb
    assert '"Tell Bo \\"x\\\\" (' in grammar('Tell Bo "x\\', REQ)  # quotes and backslashes escaped


def test_second_person_in_an_instruction_naming_its_recipient_is_the_user():
    answers = ["Hi Rosa,", "Tell Rosa that you work from home on Tuesday afternoon, so the plumber can come."]
    got = write_instruction(FakeBackend(answers), load_prompt(), REQ, seed=5)
    assert got.text == "Tell Rosa that I work from home on Tuesday afternoon, so the plumber can come."
    asked = write_instruction(FakeBackend(["Ask Rosa to let you know about the sink."]), load_prompt(), REQ, seed=5)
    assert asked.text == "Ask Rosa to let me know about the sink."
    thanks = Request("Ravi Shah", "Invoice", "Thanks so much for your help with the invoice.")
    thanked = write_instruction(FakeBackend(["Thank Ravi for your help with the invoice."]), load_prompt(), thanks,
                                seed=5)  # fmt: skip
    assert thanked.text == "Thank Ravi for their help with the invoice."  # the help was Ravi's


def test_hopeless_answers_are_cut_after_two_words():
    backend = FakeBackend(["Hi Rosa, " + "blah " * 60, "Ask Rosa for a plumber visit on Tuesday afternoon."])
    got = write_instruction(backend, load_prompt(), REQ, seed=5)
    assert got.tries == 2 and got.completion_tokens < 15  # not the 60 words of the first answer


def test_when_every_try_fails_the_fallback_is_used_and_flagged():
    backend = FakeBackend(["Hi Rosa,"] * 4)
    got = write_instruction(backend, load_prompt(), REQ, seed=5, tries=4)
    assert (got.method, got.flags, got.tries) == ("fallback", ["retried", "fallback"], 4)
    # One free try, then the forced starts: by the email's kind twice (another seed), then any addressed verb.
    assert [p.grammar for p in backend.params] == [None, grammar("Ask Rosa", REQ), grammar("Ask Rosa", REQ),
                                                   grammar("", REQ)]  # fmt: skip
    # The subject repeats the email's opening, so it is not named as a topic.
    assert got.text == "Tell Rosa that the kitchen sink is leaking again since the weekend and ask whether the " \
        "plumber could come on Tuesday afternoon."  # fmt: skip


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (Request("Ravi Shah", "Invoice", "Hi Ravi,\n\nThanks for sending invoice INV-4028. I passed it on.\n\nAlex"),
         "Thank Ravi for sending invoice INV-4028 and say that I passed it on."),
        (Request("Ravi Shah", "Q3 numbers", "Hi Ravi,\n\nThe numbers are final. Can we ship on Monday?\n\nAlex"),
         "Write to Ravi about Q3 numbers: say that the numbers are final and ask whether we can ship on Monday."),
        (Request("Raman, Priya and Marcus Webb and Sam Lee", "Re: Q3", "Looks good to me, ship it.\n\nAlex", "Priya",
                 "Can we ship?"),
         "Answer Priya's question about Q3: say that it looks good to me, ship it."),
        (Request("Jo Park", "Re: Dinner", "Sure. Could you bring the salad? We will be six.", "", ""),
         "Reply to Jo about Dinner: say that we will be six and ask them to bring the salad."),
        (Request("Colleague", "Here they are. Please let me…", "Here they are.  Please let me know that you've "
                 "received them. And thanks for sending them along to Nancy."),
         "Ask Colleague to let me know that they've received them."),
        (Request("Colleague", "Fred,If we have the same…", "Fred,If we have the same purchaser for both, it would be "
                 "easier. Do you see any problem with this?"),
         "Tell Colleague that if we have the same purchaser for both, it would be easier and ask whether they see "
         "any problem with this."),
        (Request("Colleague", "Talked to Pescetti…", "Talked to Pescetti yesterday. Is your draft ready?"),
         "Tell Colleague that I talked to Pescetti yesterday and ask whether their draft is ready."),
        (Request("Dale Li", "", "Dale,Has GE initialled the pages? Please ship me the originals."),
         "Ask Dale to ship me the originals and ask whether GE has initialled the pages."),
        (Request("", "", "The report is done."), "Tell them that the report is done."),
    ],
)  # fmt: skip
def test_the_fallback_reads_like_a_request(request_, expected):
    assert fallback(request_) == expected


def test_the_fallback_never_quotes_the_email():
    import email
    from email.utils import getaddresses

    import mailgen as gen

    from trainer.pairs.build import _recipients

    sent = [m for m in gen.generate_messages(150, seed=3) if m.own_text]  # the author's own words
    assert len(sent) > 20
    for message in sent:
        headers = email.message_from_bytes(message.raw)
        body = message.own_text
        to = _recipients(getaddresses([str(headers["To"] or "")]))  # as the builder names them
        request = Request(to, str(headers["Subject"] or ""), body)
        text = fallback(request)
        assert text.split()[0].lower() in VERBS, text
        assert all((q in text) <= (q in body) for q in '"“”') and ': "' not in text, text  # its own quotes only
        assert len(text.split()) <= 60, text


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
    import mailgen as gen
    from cluttered import LEFTOVER, write_cluttered_mbox

    from assistant.importer import import_paths
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


def test_the_labeller_sees_no_signature_or_list_footer():
    footer = "_" * 47 + "\nLinaro-mm-sig mailing list -- linaro-mm-sig@lists.linaro.org\nTo unsubscribe send an email"
    body = (
        "Well, config options only help when the value can't be changed at runtime.\n\nI would just vote to "
        f"disable the limit by default.\n\nRegards,\nChristian.\n\n{footer} to linaro-mm-sig-leave@lists.linaro.org"
    )
    request = Request("Robert Mader", "Re: udmabuf size limit", body, "Robert Mader", "Can we raise the limit?")
    shown = load_prompt().messages(request)[-1]["content"]
    assert shown.endswith("I would just vote to disable the limit by default.")
    assert "unsubscribe" not in fallback(request) and "Christian" not in fallback(request)
    assert start(request) == "Tell Robert"  # the footer's "--" and addresses are no question either
