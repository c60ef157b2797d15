"""Pairs built by the real embedded model (SmolLM2-135M) from a generated mailbox (slow: ~10-40 s)."""

from __future__ import annotations

import pytest

from assistant.drafting.backend import EngineSettings, LlamaBackend
from assistant.drafting.models import embedded_model_path
from assistant.importer import import_paths
from assistant.mail import generate as gen
from trainer.pairs import build_pairs, list_pairs
from trainer.pairs.candidates import own_words
from trainer.pairs.instructions import COPY_RUN, VERBS, _words, longest_common_run

pytestmark = pytest.mark.slow


def test_the_embedded_model_writes_usable_instructions(db, tmp_path):
    path = tmp_path / "mail.mbox"
    gen.write_mbox(path, gen.generate_messages(150, seed=11))
    import_paths(db, [path], me=[gen.ME_ADDR])
    backend = LlamaBackend(EngineSettings(model_path=str(embedded_model_path()), n_ctx=2048))
    report = build_pairs(db, backend, limit=8)
    assert report.built == 8 and report.status == "done"
    assert report.built > report.fallback  # the model, not only the extractive fallback, wrote some
    for pair in list_pairs(db):
        words = _words(pair.instruction)
        email = [w.lower() for w in _words(" ".join(own_words(pair.output)))]
        assert words and words[0] in VERBS, pair.instruction
        assert pair.instruction.strip() != pair.output.strip()
        assert longest_common_run(words, email) < len(email)  # never the whole email
        if "fallback" not in pair.flags:
            assert longest_common_run(words, email) < COPY_RUN
    again = build_pairs(db, backend, limit=8)
    assert (again.built, again.cached) == (0, 8)
