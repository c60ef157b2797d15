"""Pairs built by the real embedded model (SmolLM2-135M) from a generated mailbox (slow: a few minutes)."""

from __future__ import annotations

import mailgen as gen
import pytest

from assistant.drafting.backend import EngineSettings, GenerationParams, LlamaBackend
from assistant.drafting.models import embedded_model_path
from assistant.importer import import_paths
from trainer.pairs import build_pairs, list_pairs
from trainer.pairs.candidates import own_words
from trainer.pairs.instructions import COPY_RUN, VERBS, _words, grammar, longest_common_run
from trainer.pairs.prompt import Request

pytestmark = pytest.mark.slow

PAIRS = 8
# Sets of 100 real emails had 10-15% (44-98% before forced starts); 8 emails leave room for chance: 3 of 8.
MAX_FALLBACK_SHARE = 0.375


@pytest.fixture(scope="module")
def backend():
    return LlamaBackend(EngineSettings(model_path=str(embedded_model_path()), n_ctx=2048))


def test_the_embedded_model_writes_usable_instructions(db, tmp_path, backend):
    path = tmp_path / "mail.mbox"
    gen.write_mbox(path, gen.generate_messages(150, seed=11))
    import_paths(db, [path], me=[gen.ME_ADDR])
    report = build_pairs(db, backend, limit=PAIRS)
    assert report.built == PAIRS and report.status == "done"
    assert sum(report.methods.values()) == PAIRS and report.fallback_share <= MAX_FALLBACK_SHARE, report.methods
    for pair in list_pairs(db):
        words = _words(pair.instruction)
        email = [w.lower() for w in _words(" ".join(own_words(pair.output)))]
        assert words and words[0] in VERBS, pair.instruction
        assert pair.instruction.strip() != pair.output.strip() and ': "' not in pair.instruction
        assert longest_common_run(words, email) < len(email)  # never the whole email
        if pair.method != "fallback":
            assert longest_common_run(words, email) < COPY_RUN, pair.instruction
    again = build_pairs(db, backend, limit=PAIRS)
    assert (again.built, again.cached) == (0, PAIRS)


def test_llama_cpp_follows_a_forced_start_with_awkward_names(backend):
    request = Request('Zoë "Z" O\'Brien\\', "Re: Lunch", "Thanks for lunch! Shall we go again on Friday?")
    messages = [{"role": "user", "content": "Write one sentence about lunch."}]
    for start in ('Ask Zoë "Z\\', ""):
        params = GenerationParams(max_tokens=24, temperature=0.2, seed=1, stop=("\n",), grammar=grammar(start, request))
        text = "".join(backend.stream(messages, params))
        assert text.startswith(start or "") and text.split()[0] in ("Ask", "Tell", "Remind", "Invite", "Update",
            "Let", "Warn", "Congratulate", "Thank", "Inform", "Send", "Offer", "Confirm", "Apologize", "Reply",
            "Explain", "Propose", "Suggest"), text  # fmt: skip
