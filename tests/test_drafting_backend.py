"""The backend interface: the fake streams and records like a model would; llama settings select reloads."""

from __future__ import annotations

import numpy as np
import pytest
from fakes import FakeBackend

from assistant.drafting import backend as backend_module
from assistant.drafting.backend import (
    FLOOR,
    HOLD,
    PUSH_AT_AIM,
    PUSH_AT_TWICE,
    SIGN_OFF_TOKENS,
    TOKENS_PER_WORD,
    CloseNear,
    EndOfTurn,
    EngineSettings,
    GenerationParams,
    LlamaBackend,
    default_threads,
)

MESSAGES = [{"role": "system", "content": "You write emails."}, {"role": "user", "content": "Say hi"}]


def test_fake_streams_queued_replies_word_by_word_and_records_prompts():
    fake = FakeBackend(replies=["Hi Rosa,\n\nSee you Monday."])
    chunks = list(fake.stream(MESSAGES, GenerationParams(seed=7)))
    assert chunks == ["Hi", " Rosa,", "\n\nSee", " you", " Monday."]
    assert fake.prompts == [MESSAGES] and fake.params[0].seed == 7
    assert list(fake.stream(MESSAGES, GenerationParams())) == ["Reply", " 2"]  # queue empty: a default reply


def test_fake_honours_max_tokens_stop_strings_and_cancel():
    fake = FakeBackend()
    fake.enqueue("one two three four five", "keep this</email> not this", "a b c d e f")
    assert "".join(fake.stream(MESSAGES, GenerationParams(max_tokens=3))) == "one two three"
    assert "".join(fake.stream(MESSAGES, GenerationParams(stop=("</email>",)))) == "keep this"
    seen: list[str] = []
    out = []
    for chunk in fake.stream(MESSAGES, GenerationParams(), cancel=lambda: len(seen) >= 2):
        seen.append(chunk)
        out.append(chunk)
    assert "".join(out) == "a b"


def test_fake_keeps_its_context_size_and_records_engine_settings():
    fake = FakeBackend(settings=EngineSettings(model_path="x.gguf", n_ctx=777))
    fake.configure(EngineSettings(model_path="real.gguf", n_ctx=4096, lora_path="/a/lora.gguf", lora_scale=0.5))
    assert fake.n_ctx == 777 and fake.settings.lora_path == "/a/lora.gguf" and fake.settings.lora_scale == 0.5
    assert [s.model_path for s in fake.configured] == ["real.gguf"]


def test_llama_engine_key_changes_with_anything_that_needs_a_reload(tmp_path):
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    lora_a, lora_b = tmp_path / "a.gguf", tmp_path / "b.gguf"
    lora_a.write_bytes(b"GGUF")
    lora_b.write_bytes(b"GGUF")
    base = EngineSettings(model_path=str(model))
    keys = {
        backend_module._key(s)
        for s in (
            base,
            EngineSettings(model_path=str(model), lora_path=str(lora_a)),
            EngineSettings(model_path=str(model), lora_path=str(lora_b)),
            EngineSettings(model_path=str(model), lora_path=str(lora_b), lora_scale=0.5),
            EngineSettings(model_path=str(model), n_ctx=2048),
            EngineSettings(model_path=str(model), n_gpu_layers=0),
        )
    }
    assert len(keys) == 6
    assert backend_module._key(base) == backend_module._key(EngineSettings(model_path=str(model)))
    backend = LlamaBackend(base)
    backend.configure(EngineSettings(model_path=str(model), lora_path=str(lora_a)))
    assert backend.settings.lora_path == str(lora_a)  # used from the next stream on, no restart


def test_a_model_llama_cannot_load_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 64)
    with pytest.raises(backend_module.MailvoiceError, match="llama.cpp could not load"):
        LlamaBackend(EngineSettings(model_path=str(bad))).load()


def test_default_threads_is_sane():
    assert 1 <= default_threads() <= 64


@pytest.mark.parametrize(("cpus", "threads"), [(1, 1), (2, 2), (4, 4), (16, 8)])
def test_threads_follow_the_cpus_the_process_may_use(monkeypatch, cpus, threads):
    # Pinned with taskset to fewer CPUs than the machine has, llama.cpp must not start more threads than that:
    # extra threads on the same core only wait for each other.
    monkeypatch.setattr(backend_module.os, "sched_getaffinity", lambda _pid: set(range(cpus)), raising=False)
    monkeypatch.setattr(backend_module.os, "cpu_count", lambda: 64)
    kwargs = backend_module.llama_kwargs(EngineSettings(model_path="m.gguf", n_gpu_layers=0))
    assert (kwargs["n_threads"], kwargs["n_threads_batch"]) == (threads, cpus)


def test_a_turn_start_ends_the_reply_instead():
    scores = np.log(np.array([0.1, 0.2, 0.3, 0.15, 0.25], dtype=np.float32))  # 1 and 3 start turns, 2 ends one
    out = EndOfTurn([1, 3], end=2)(np.array([9, 9]), scores.copy())
    chances = np.exp(out) / np.exp(out).sum()
    assert chances[1] == 0 and chances[3] == 0
    assert chances[2] == pytest.approx(0.3 + 0.2 + 0.15)  # the model's chance of going on to a new turn ends it
    assert chances[[0, 4]] == pytest.approx([0.1, 0.25])  # the rest as they were


def test_a_turn_start_ends_the_reply_even_while_the_end_is_held_back():
    closer = CloseNear(40, TEXTS.__getitem__, newline=1, end=[0], openers=[4], floor=30)
    fold = EndOfTurn([9], end=0)
    scores = np.zeros(len(TEXTS) + 1, dtype=np.float32)
    scores[9] = 6.0  # the model all but writes a turn start, after a sign-off, before the floor
    ids = np.array([2, 2, 3, 1, 4, 6])
    closer(ids[:1], scores.copy())  # the prompt
    out = fold(ids, closer(ids, scores.copy()))
    chances = np.exp(out) / np.exp(out).sum()
    assert chances[0] > 0.9  # the end it stands for is not held back


# --- bringing a reply to a close near its aimed length -----------------------------------------------------

TEXTS = {0: "<end>", 1: "\n", 2: " word", 3: ".", 4: "Best", 5: '?"', 6: ",\n", 7: " Best", 8: " "}


def _close_near(aim: int = 4) -> CloseNear:
    return CloseNear(aim, TEXTS.__getitem__, newline=1, end=[0], openers=[4], spaced=[7])


def _step(closer: CloseNear, ids: list[int]) -> np.ndarray:
    return closer(np.array(ids), np.zeros(len(TEXTS), dtype=np.float32))


def _feed(closer: CloseNear, prompt: list[int], written: list[int]) -> np.ndarray:
    """The scores after ``written``, given to ``closer`` a token at a time as llama.cpp does."""
    for n in range(len(written) + 1):
        scores = _step(closer, prompt + written[:n])
    return scores


def test_between_the_floor_and_the_aim_nothing_is_pushed_even_at_a_sentence_or_line_end():
    closer = _close_near(aim=20)
    prompt = [2, 2, 2]
    _step(closer, prompt)
    body = prompt + [2] * int(20 * FLOOR)  # the floor reached, four tokens short of the aim
    for written in ([3], [3, 1], [3, 1, 2]):
        assert not _step(closer, body + written).any()


def test_before_the_floor_the_end_is_held_back_and_a_closing_word_once_a_sentence_is_said():
    closer = _close_near(aim=20)
    prompt = [2, 2]
    assert _step(closer, prompt).tolist() == [-HOLD, 0, 0, 0, 0, 0, 0, 0, 0]  # no empty reply
    greeting = _step(closer, prompt + [2, 6])  # "Hi Ana,\n": "Thanks for…" may open the reply
    assert greeting[0] == -HOLD and greeting[4] == 0
    mid_sentence = _step(closer, prompt + [2, 6, 2])
    assert mid_sentence[0] == -HOLD and mid_sentence[4] == 0
    # A sentence ends, its line not yet: "Best" with no space before it is a sign-off run on ("today.Best,Jeff")
    said = _step(closer, prompt + [2, 6, 2, 3])
    assert said[[0, 4]].tolist() == [-HOLD, -HOLD] and said[[1, 2, 3]].tolist() == [0, 0, 0]
    at_line_start = _step(closer, prompt + [2, 6, 2, 3, 1])
    assert at_line_start[[0, 4]].tolist() == [-HOLD, -HOLD] and at_line_start[[1, 2, 3]].tolist() == [0, 0, 0]
    assert _step(closer, prompt + [2, 6, 2, 3, 1, 1])[4] == -HOLD  # a blank line: still a line start
    assert _step(closer, prompt + [2, 6, 2, 3, 1, 1, 2])[4] == 0  # within a sentence: no sign-off can begin


def test_a_closing_word_that_comes_all_the_same_lifts_the_hold():
    closer = _close_near(aim=20)
    prompt = [2]
    for n in range(4):  # the prompt, then "word.\n" a token at a time
        _step(closer, prompt + [2, 3, 1][:n])
    assert not _step(closer, prompt + [2, 3, 1, 4]).any()  # "Best": a sign-off, perhaps with a name not the user's
    assert not _step(closer, prompt + [2, 3, 1, 4, 6]).any()


def test_a_sign_off_run_on_after_a_sentence_lifts_the_hold_too():
    closer = _close_near(aim=20)
    prompt = [2]
    for n in range(3):  # the prompt, then "word." a token at a time
        _step(closer, prompt + [2, 3][:n])
    assert not _step(closer, prompt + [2, 3, 4]).any()  # "word.Best": the writer's way of signing off
    assert not _step(closer, prompt + [2, 3, 4, 6]).any()


def test_a_closing_word_after_a_sentence_and_a_space_is_held_back_and_lifts_the_hold():
    closer = _close_near(aim=20)
    prompt = [2]
    for n in range(3):  # the prompt, then " word." a token at a time
        _step(closer, prompt + [2, 3][:n])
    assert _step(closer, prompt + [2, 3])[7] == -HOLD  # "…today. Best,Jeff" after two sentences: held back
    assert _step(closer, prompt + [2, 3, 2])[7] == 0  # within a sentence " Best" is a word like another
    closer = _close_near(aim=20)
    for n in range(3):
        _step(closer, prompt + [2, 3][:n])
    assert not _step(closer, prompt + [2, 3, 7]).any()  # it came all the same: the writer signs off


def test_a_space_after_a_sentence_keeps_it_ended():
    # "…hours.  Best,Jeff": two spaces after a full stop are " " then " Best"
    assert _feed(_close_near(aim=20), [2], [2, 3, 8])[7] == -HOLD
    assert _feed(_close_near(aim=20), [2], [2, 8])[7] == 0  # a space within a sentence is not a sentence's end
    assert _feed(_close_near(aim=4), [2], [2, 2, 2, 2, 3, 8])[1] > 0  # past the aim: the line break drawn on
    assert _feed(_close_near(aim=4), [2], [2, 2, 2, 2, 2, 8])[1] == 0


def test_no_floor_for_a_tiny_aim_and_the_hold_ends_at_the_floor():
    assert _close_near(aim=1).floor == 0
    given = CloseNear(10, TEXTS.__getitem__, newline=1, end=[0], openers=[4], floor=8)
    assert given.floor == 8 and CloseNear(10, TEXTS.__getitem__, 1, [0], [4], floor=30).floor == 10  # never past
    closer = _close_near(aim=10)
    _step(closer, [2])
    assert _step(closer, [2] + [2] * (int(10 * FLOOR) - 1))[0] == -HOLD
    assert _step(closer, [2] + [2] * int(10 * FLOOR))[0] == 0


def test_past_the_aim_a_sentence_end_pushes_a_line_break_and_a_line_end_pushes_the_close():
    closer = _close_near(aim=4)
    prompt = [2, 2]
    _step(closer, prompt)
    at_sentence_end = _step(closer, prompt + [2, 2, 2, 3])
    assert at_sentence_end[1] == PUSH_AT_AIM and at_sentence_end[[0, 4]].tolist() == [0, 0]
    after_quote = _step(closer, prompt + [2, 2, 2, 2, 5])  # ?" ends a sentence too
    assert after_quote[1] > PUSH_AT_AIM
    at_line_end = _step(closer, prompt + [2, 2, 2, 3, 1])
    assert at_line_end[[0, 4]].tolist() == [at_line_end[0]] * 2 and at_line_end[0] > PUSH_AT_AIM
    assert at_line_end[1] == 0 and at_line_end[2] == 0
    assert _step(closer, prompt + [2, 2, 2, 2, 6])[0] > 0  # a token that ends with a line break
    mid_sentence = _step(closer, prompt + [2, 2, 2, 2, 2, 2])
    assert not mid_sentence.any()


# a word, then a part of one with no space before it (a path or a hash takes several tokens a word), a line break,
# and two tokens that decode to nothing alone, a letter together ("你")
CODE = {0: "<end>", 1: "\n", 2: " word", 3: "/mm", 4: "", 5: ""}


def _code_text(ids: list[int]) -> str:
    text = "".join(CODE[i] for i in ids)
    return text + "你" * sum(a == 4 and b == 5 for a, b in zip(ids, ids[1:], strict=False))


def _by_words(aim: int = 20, per_word: float | None = TOKENS_PER_WORD) -> CloseNear:
    return CloseNear(aim, CODE.__getitem__, newline=1, end=[0], line_text=_code_text, tokens_per_word=per_word)


def test_a_run_of_tokens_in_few_words_does_not_count_as_the_words_asked_for():
    written = [2] + [3] * 24  # one word in 25 tokens: past the aim of 20 in tokens
    assert _feed(_by_words(), [2], written)[0] == -HOLD  # as half its tokens, short of the floor: still held back
    assert _feed(_by_words(per_word=None), [2], written)[0] == 0  # counted in tokens, it is past the aim
    words = [2] + [3] * 23 + [2] * 15  # 16 words, 39 tokens: 16 words take 22 tokens, past the aim
    closer = _by_words()
    _feed(closer, [2], words)
    assert closer.words == 16 and closer._count(np.array([2, *words]))[0] == int(16 * TOKENS_PER_WORD)


def test_a_token_counts_at_least_half_so_a_script_of_many_tokens_a_word_reaches_its_floor():
    closer = _by_words()
    _feed(closer, [2], [2] + [3] * 39)  # one word in 40 tokens (a word of Russian takes five)
    assert closer.words == 1 and closer._count(np.array([2, 2] + [3] * 39))[0] == 20  # at the aim


def test_words_are_counted_as_a_split_of_the_text_counts_them():
    closer = _by_words()
    _feed(closer, [2], [2, 3, 1, 3])  # " word/mm\n/mm"
    assert closer.words == len(_code_text([2, 3, 1, 3]).split()) == 2
    closer = _by_words()
    _feed(closer, [2], [2, 1, 4, 5])  # " word\n你": the letter's two tokens decode together
    assert closer.words == len(_code_text([2, 1, 4, 5]).split()) == 2


def test_prose_is_counted_by_its_tokens_as_before():
    prose = [2, 2, 2, 1, 2, 2, 2, 2, 1] * 4  # four words a line: fewer tokens than the words would take
    by_words, by_tokens = _by_words(aim=12), _by_words(aim=12, per_word=None)
    for n in range(len(prose) + 1):
        assert (_step(by_words, [2] + prose[:n]) == _step(by_tokens, [2] + prose[:n])).all()


def test_once_a_sign_off_begins_only_the_end_is_pushed_and_not_before_the_name_line():
    closer = _close_near(aim=4)
    prompt = [2]
    _step(closer, prompt)
    body = prompt + [2, 2, 3, 1]  # at the aim, a sentence and its line end: the close is pushed
    assert _step(closer, body)[[0, 4]].tolist() == [PUSH_AT_AIM] * 2
    signed = body + [4]  # "Best": a closing word
    assert not _step(closer, signed).any()
    assert not _step(closer, signed + [6]).any()  # ",\n": the name comes next, nothing pushed
    after_name = _step(closer, signed + [6, 2, 1])  # "Alex\n": now only the end
    assert after_name[0] > 0 and after_name[4] == 0 and after_name[1] == 0
    assert not _step(closer, signed + [6, 2, 3]).any()  # no line break pushed inside a sign-off


SIGNED_TEXTS = {**TEXTS, 9: "Kay", 10: "Cheers", 11: ",", 12: "la", 13: "kay", 14: "Ji", 15: "", 16: "í"}


def _signed_feed(closer: CloseNear, written: list[int]) -> np.ndarray:
    for n in range(len(written) + 1):  # the prompt (one token) alone, then a token at a time
        scores = closer(np.array(([2] + written)[: n + 1]), np.zeros(len(SIGNED_TEXTS), dtype=np.float32))
    return scores


def test_a_closing_line_with_the_writers_name_is_the_whole_sign_off():
    def closer() -> CloseNear:
        return CloseNear(4, SIGNED_TEXTS.__getitem__, 1, [0], openers=[4, 9], signed=["Kay", "Kay Brown"])

    body = [2, 2, 3, 1]  # past the aim, a sentence and its line
    after_name = _signed_feed(closer(), body + [9, 6])  # "Kay,\n": the end now, not a greeting's next line
    assert after_name[0] > 0 and after_name[[4, 9]].tolist() == [0, 0]
    run_on = _signed_feed(closer(), body + [4, 11, 9, 1])  # "Best,Kay\n": a closing and the name on one line
    assert run_on[0] > 0
    assert not _signed_feed(closer(), body + [4, 6]).any()  # "Best,\n": the name comes on the next line
    assert _signed_feed(closer(), body + [4, 6, 9, 1])[0] > 0
    unsigned = CloseNear(4, SIGNED_TEXTS.__getitem__, 1, [0], openers=[4, 9])  # no names known: a line later
    assert not _signed_feed(unsigned, body + [9, 6]).any()
    assert not _signed_feed(closer(), body + [4, 11, 9, 12, 1]).any()  # "Best,Kayla": another name
    assert not _signed_feed(closer(), body + [4, 11, 13, 1]).any()  # "Best,kay": not as she writes it
    assert not _signed_feed(closer(), body + [4, 11, 9, 2, 1]).any()  # "Best,Kay word": the name does not end it


def test_a_name_whose_letter_takes_two_tokens_is_read_from_the_tokens_together():
    # "Jiří": "ř" is two tokens (15, 15) that decode to nothing alone
    whole = {(4, 11, 14, 15, 15, 16, 1): "Best,Jiří\n"}

    def closer() -> CloseNear:
        return CloseNear(4, SIGNED_TEXTS.__getitem__, 1, [0], openers=[4], signed=["Jiří"],
                         line_text=lambda ids: whole.get(tuple(ids), "?"))  # fmt: skip

    assert _signed_feed(closer(), [2, 2, 3, 1, 4, 11, 14, 15, 15, 16, 1])[0] > 0
    alone = CloseNear(4, SIGNED_TEXTS.__getitem__, 1, [0], openers=[4], signed=["Jiří"])  # each token's text: "Jií"
    assert not _signed_feed(alone, [2, 2, 3, 1, 4, 11, 14, 15, 15, 16, 1]).any()


def test_closings_anyone_uses_are_held_back_before_the_floor_and_never_pushed():
    def closer() -> CloseNear:
        return CloseNear(20, SIGNED_TEXTS.__getitem__, 1, [0], openers=[4], held=[10])

    said = _signed_feed(closer(), [2, 3, 1])  # a sentence said, a line begins: "Cheers," would sign off
    assert said[[0, 4, 10]].tolist() == [-HOLD] * 3
    assert _signed_feed(closer(), [2, 2])[10] == 0  # within the first sentence it may be a word
    assert not _signed_feed(closer(), [2, 3, 1, 10]).any()  # it came all the same: the reply may end
    past_aim = CloseNear(4, SIGNED_TEXTS.__getitem__, 1, [0], openers=[4], held=[10])
    at_line_end = _signed_feed(past_aim, [2, 2, 2, 3, 1])
    assert at_line_end[[0, 4]].tolist() == [at_line_end[0]] * 2 and at_line_end[0] > 0 and at_line_end[10] == 0


def test_past_the_aim_a_closing_word_within_a_line_does_not_begin_a_sign_off():
    # "… today. Best wishes to the team." past the aim: its sentence end still draws a line break
    assert _feed(_close_near(aim=4), [2], [2, 2, 3, 7, 2, 2, 3])[1] > 0


def test_past_the_aim_a_line_begun_with_a_closing_word_that_runs_on_is_a_sentence():
    body = [2, 2, 3, 1, 4]  # past the aim, a line begins "Thanks…"
    assert not _feed(_close_near(aim=4), [2], body + [2] * (SIGN_OFF_TOKENS - 1) + [3]).any()  # a sign-off's line
    sentence = body + [2] * SIGN_OFF_TOKENS + [3]  # "Thanks for bringing this up, and I'm looking…."
    assert _feed(_close_near(aim=4), [2], sentence)[1] > 0  # a sentence: its end draws a line break again
    line_end = _feed(_close_near(aim=4), [2], sentence + [1])
    assert line_end[0] > 0 and line_end[4] == 0  # and at the line's end the end alone: not another "Thanks, …"


class Vocab:
    """A tokenizer of a few pieces, longest first: " Best" is one token, " Sincerely" starts " Since", at a line
    start "Sincerely" is "S" then "incerely"."""

    pieces = {" Best": [11], " Since": [12], "re": [13], "ly": [14], ",": [15], "Best": [21], " regards": [22],
              "S": [30], "incerely": [31]}  # fmt: skip
    texts = {i: p for p, ids in pieces.items() for i in ids}

    def tokenize(self, data, add_bos=False, special=False):
        text, ids = data.decode(), []
        while text:
            piece = max((p for p in self.pieces if text.startswith(p)), key=len)
            ids += self.pieces[piece]
            text = text[len(piece) :]
        return ids

    def detokenize(self, ids):
        return "".join(self.texts[i] for i in ids).encode()


def test_a_spaced_closing_word_is_one_token_or_none():
    texts = backend_module.TokenTexts(Vocab())
    assert texts.word_token("Best,") == 11 and texts.word_token("Best,Jeff") == 11 and texts.word_token("Best") == 11
    assert texts.word_token("Best regards,") == -1  # a word that does not close by itself: " All the best"
    assert texts.word_token("Sincerely,") == -1 and texts.word_token("") == -1 and texts.word_token(",") == -1
    assert texts.first_token("Best,") == 21


def test_a_closing_held_at_a_line_start_is_one_whole_word_or_none():
    texts = backend_module.TokenTexts(Vocab())
    assert texts.whole_word_token("Best regards,") == 21 and texts.whole_word_token("Best,") == 21
    assert texts.whole_word_token("Sincerely,") == -1  # "S" begins other words too
    assert texts.join([30, 31, 15]) == "Sincerely,"
    assert texts.whole_word_token("") == -1 and texts.whole_word_token(",") == -1


def test_the_push_grows_with_the_overshoot_up_to_twice_the_aim():
    closer = _close_near(aim=10)
    assert closer.push(10) == PUSH_AT_AIM
    assert PUSH_AT_AIM < closer.push(15) < PUSH_AT_TWICE
    assert closer.push(20) == closer.push(60) == PUSH_AT_TWICE


def test_generation_params_record_the_aim_and_closings_only_when_set():
    assert "aim_tokens" not in GenerationParams().to_json() and "closings" not in GenerationParams().to_json()
    record = GenerationParams(aim_tokens=84, floor_tokens=60, closings=("Best,",)).to_json()
    assert record["aim_tokens"] == 84 and record["floor_tokens"] == 60 and record["closings"] == ["Best,"]
    assert "floor_tokens" not in GenerationParams(aim_tokens=84).to_json()
    assert "signed" not in record and GenerationParams(signed=("Kay",)).to_json()["signed"] == ["Kay"]
