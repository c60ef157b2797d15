"""Drafting with real llama.cpp on the embedded SmolLM2-135M model (slow: a few seconds each)."""

from __future__ import annotations

import csv

import mailgen as gen
import pytest

from assistant.drafting import LlamaBackend, draft, embedded_model_path, engine_settings, export_drafts
from assistant.drafting.backend import FLOOR, EngineSettings, GenerationParams
from assistant.drafting.drafts import list_drafts
from assistant.drafting.incomplete import sign_as_user
from assistant.drafting.models import ModelError
from assistant.drafting.voice import learn_voice
from assistant.errors import Cancelled
from assistant.importer import import_paths

pytestmark = pytest.mark.slow


@pytest.fixture
def mailbox(db, tmp_path):
    path = tmp_path / "Sent.mbox"
    gen.write_mbox(path, gen.generate_messages(150, seed=11))
    import_paths(db, [path], me=["alex.morgan@example.org"])
    return db


def test_a_real_draft_is_streamed_saved_and_exported(mailbox, tmp_path):
    chunks: list[str] = []
    result = draft(
        mailbox,
        "ask Rosa if the plumber can come on Monday to fix the kitchen faucet",
        to="rosa@properties.example.net",
        length="short",
        seed=1,
        on_chunk=lambda _i, text: chunks.append(text),
    )
    text, streamed = result.drafts[0].text, "".join(chunks)
    assert len(chunks) >= 5 and len(text.split()) >= 5
    # Saved as streamed, but for a sign-off's name not the user's, put right once the draft is done.
    assert text == sign_as_user(streamed, (), learn_voice(mailbox))[0]
    assert result.tokens > 5 and result.tokens_per_second > 0 and result.first_token_seconds is not None
    assert result.examples  # the user's own mail was shown
    saved = list_drafts(mailbox)[0]
    assert saved["text"] == text and saved["model"] == embedded_model_path().name
    out = tmp_path / "drafts.csv"
    assert export_drafts(mailbox, out) == 1
    with open(out, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["generated_email"] == text


def test_the_embedded_models_turn_start_ends_a_reply():
    from assistant.drafting.backend import EndOfTurn, logits_processors

    llama = LlamaBackend(EngineSettings(model_path=str(embedded_model_path()), n_ctx=512)).llama
    (start,) = llama.tokenize(b"<|im_start|>", add_bos=False, special=True)
    (end,) = llama.tokenize(b"<|im_end|>", add_bos=False, special=True)
    for params in (GenerationParams(), GenerationParams(aim_tokens=40)):
        fold = logits_processors(llama, params)[-1]  # last: after the hold on the close (see its test)
        assert isinstance(fold, EndOfTurn)
        assert start in fold.starts and end not in fold.starts and fold.end == end


def test_cancel_mid_stream_then_draft_again(mailbox):
    seen: list[str] = []
    with pytest.raises(Cancelled):
        draft(
            mailbox,
            "thank Kenji for the budget numbers",
            seed=2,
            on_chunk=lambda _i, t: seen.append(t),
            cancel=lambda: len(seen) >= 3,
        )
    assert len(seen) == 3 and list_drafts(mailbox) == []
    result = draft(mailbox, "thank Kenji for the budget numbers", length="short", seed=2, examples=False)
    assert result.drafts[0].text


def test_closing_the_stream_stops_generation():
    backend = LlamaBackend(EngineSettings(model_path=str(embedded_model_path()), n_ctx=1024))
    messages = [{"role": "user", "content": "Write a long story about a lighthouse."}]
    stream = backend.stream(messages, GenerationParams(max_tokens=400, seed=3))
    first = [next(stream) for _ in range(3)]
    stream.close()
    assert all(first)
    again = "".join(backend.stream(messages, GenerationParams(max_tokens=8, seed=3)))
    assert again  # the model is usable after an early stop


def test_changing_engine_settings_reloads_the_model():
    path = str(embedded_model_path())
    backend = LlamaBackend(EngineSettings(model_path=path, n_ctx=512))
    first = backend.llama
    assert backend.llama is first  # cached while nothing changes
    backend.configure(EngineSettings(model_path=path, n_ctx=1024))  # as an adapter switch does
    second = backend.llama
    assert second is not first and second.n_ctx() == 1024


def test_the_common_closings_held_on_the_embedded_model_are_whole_words():
    from assistant.drafting.backend import COMMON_CLOSINGS, TokenTexts, logits_processors

    llama = LlamaBackend(EngineSettings(model_path=str(embedded_model_path()), n_ctx=512)).llama
    texts = TokenTexts(llama)
    held = {texts(t) for t in (texts.whole_word_token(c) for c in COMMON_CLOSINGS) if t >= 0}
    assert held == {"Best", "Kind"}  # "Regards" begins "Reg", as "Regarding" does: not held
    closer = logits_processors(llama, GenerationParams(aim_tokens=40, closings=("Thanks,",)), texts)[0]
    assert {texts(t) for t in closer.held} >= {"Best", "Kind", "Thanks"}
    assert {texts(t) for t in closer.openers} == {"Thanks"}  # only the user's own are drawn on past the aim


def test_a_reply_is_counted_in_words_on_the_embedded_model():
    import numpy as np

    from assistant.drafting.backend import TOKENS_PER_WORD, TokenTexts, logits_processors
    from assistant.drafting.length import Length

    llama = LlamaBackend(EngineSettings(model_path=str(embedded_model_path()), n_ctx=512)).llama
    texts = TokenTexts(llama)
    length = Length(60, "chosen")
    params = GenerationParams(aim_tokens=length.aim_tokens, floor_tokens=length.floor_tokens)

    def progress(text: str) -> tuple[int, int, int]:
        """Words and tokens of ``text`` as a reply, and how far the close counts them."""
        closer = logits_processors(llama, params, texts)[0]
        ids = llama.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        scores = np.zeros(llama.n_vocab(), dtype=np.float32)
        for n in range(len(ids) + 1):
            closer(np.array([1, *ids[:n]]), scores)
        return closer.words, len(ids), closer._count(np.array([1, *ids]))[0]

    mixed = " Dvořák wrote: thanks, the fence in dma-fence-chain.c is fine now, and I will push it to the tree today."
    words, tokens, counted = progress(mixed)  # a file name takes many tokens, "ř" two
    assert words == len(mixed.split()) and tokens > TOKENS_PER_WORD * words and counted == int(words * TOKENS_PER_WORD)
    prose = " Could the plumber come on Monday morning to fix the faucet? Thanks, Ana"
    words, tokens, counted = progress(prose)
    assert words == len(prose.split()) and counted == tokens  # prose: counted by its tokens
    russian = " Привет, Анна! Сантехник придёт в понедельник утром, чтобы починить кран на кухне. " * 8
    words, tokens, counted = progress(russian)
    assert tokens > 3 * TOKENS_PER_WORD * words  # far more tokens a word than English
    room = length.max_tokens(4096)
    assert counted == tokens // 2 and room // 2 >= length.floor_tokens  # it reaches its floor within its room


def test_real_tokenizer_counts_tokens():
    backend = LlamaBackend(EngineSettings(model_path=str(embedded_model_path()), n_ctx=512))
    assert backend.count_tokens("Hello") == 1
    assert 5 < backend.count_tokens("Could the plumber come on Monday morning to fix the faucet?") < 20


def test_a_file_that_is_not_gguf_is_refused_before_llama_sees_it(db, tmp_path):
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"<html>404 Not Found</html>")
    with pytest.raises(ModelError, match="is not a GGUF model file"):
        draft(db, "say hello", model=fake)
    settings, _ = engine_settings(db)
    assert settings.model_path == str(embedded_model_path())


def test_a_reply_past_its_aim_closes_at_a_line_end_instead_of_running_to_the_budget():
    backend = LlamaBackend(EngineSettings(model_path=str(embedded_model_path()), n_ctx=1024))
    messages = [{"role": "user", "content": "Write a long email to Bob about the budget review, in many paragraphs."}]
    free = GenerationParams(max_tokens=300, seed=5, temperature=0.0)
    aimed = GenerationParams(max_tokens=300, seed=5, temperature=0.0, aim_tokens=40, closings=("Best,",))
    long = "".join(backend.stream(messages, free))
    short = "".join(backend.stream(messages, aimed))
    assert backend.count_tokens(long) >= 280  # the model alone runs to the budget
    assert 40 <= backend.count_tokens(short) < 120
    assert long.startswith(short.split("\n")[0])  # the same reply until the aim, then closed


def test_a_reply_that_would_sign_off_early_is_held_back_until_the_floor():
    backend = LlamaBackend(EngineSettings(model_path=str(embedded_model_path()), n_ctx=1024))
    messages = [{"role": "user", "content": "Write a two-sentence email to Bob thanking him for the budget numbers. "
                                            "Sign it Best, Alex"}]  # fmt: skip
    free = "".join(backend.stream(messages, GenerationParams(max_tokens=300, seed=5, temperature=0.0)))
    aimed = GenerationParams(max_tokens=300, seed=5, temperature=0.0, aim_tokens=120, closings=("Best,",))
    held = "".join(backend.stream(messages, aimed))
    said = free[: free.rindex("Best")].rstrip()  # the model alone signs off after this
    assert backend.count_tokens(free) < int(120 * FLOOR)
    assert held.startswith(said) and backend.count_tokens(held) >= int(120 * FLOOR)  # more said, then the close
