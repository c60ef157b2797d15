"""A mailbox with its training pairs, for tests of what comes after labelling (prompts, evaluation), and a
deterministic stand-in for the sentence embedder."""

from __future__ import annotations

import hashlib
from pathlib import Path

import mailgen as gen
import numpy as np
from fakes import FakeBackend

from assistant.importer import import_paths
from trainer.pairs import build_pairs


class Labeller(FakeBackend):
    """Answers every labelling prompt with the same instruction."""

    def stream(self, messages, params, cancel=None):
        self.enqueue("Tell them about the plan for next week.")
        yield from super().stream(messages, params, cancel)


def paired_store(db, folder: Path):
    """``db`` holding a generated mailbox (160 messages, some in validation threads) with its training pairs."""
    path = folder / "mail.mbox"
    gen.write_mbox(path, gen.generate_messages(160, seed=5))
    import_paths(db, [path], me=[gen.ME_ADDR])
    build_pairs(db, Labeller(), limit=None)
    return db


def bag_of_words(texts):
    """A deterministic stand-in for the sentence embedder: hashed word counts."""
    out = np.zeros((len(texts), 32))
    for i, text in enumerate(texts):
        for w in text.lower().split():
            out[i, int(hashlib.md5(w.encode()).hexdigest(), 16) % 32] += 1
    return out
