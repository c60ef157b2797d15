"""An evaluation's verdict in words: does the adapter write more like the person than the plain model does?

The scores (:mod:`trainer.evaluation.metrics`) compare each draft with the email the person really wrote.
The verdict reads two of them, ROUGE-L (shared words in order) and chrF (shared character sequences), against
the plain model's newest evaluation on as many emails with the same style-example setting; it says so when the
sample is too small to tell, when there is nothing to compare with yet, and when drafts copy training emails.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from trainer.evaluation.metrics import FEW
from trainer.evaluation.store import list_evals

TOO_FEW = 10  # below this many emails, scores swing by chance more than training moves them
MARGIN = 0.01  # a move of one point (on 0-1 scores) or less is no difference at these sample sizes
HEADLINE = (("rouge_l", "shared words"), ("chrf", "shared characters"))


@dataclass
class Verdict:
    text: str
    compared: str  # better | worse | same | unknown (no plain-model evaluation, or too few emails)


def plain_model_scores(db: sqlite_utils.Database, root: Path, n: int, examples: bool) -> dict[str, Any] | None:
    """The plain model's newest single evaluation on ``n`` emails with the same ``examples`` setting."""
    for row in list_evals(db, root, "none"):
        config = (row["config"] or [{}])[0]
        if row["kind"] == "eval" and row["n"] == n and bool(config.get("examples")) == examples:
            return next(iter(row["metrics"].values()), None)
    return None


def verdict(metrics: dict[str, Any], adapter: str | None, plain: dict[str, Any] | None = None) -> Verdict:
    """The verdict on one evaluation's ``metrics`` (of ``adapter``, None: the plain model), compared with the
    plain model's ``plain`` metrics when they are known."""
    n = metrics.get("n")
    if isinstance(n, int) and n < TOO_FEW:
        drafted = "1 validation email was" if n == 1 else f"{n} validation emails were"
        return Verdict(f"Too few emails to tell: {drafted} drafted, and scores on so few swing by chance. Build "
                       f"more pairs (one in ten is kept apart for this) until there are at least {TOO_FEW}, then "
                       "evaluate again.", "unknown")  # fmt: skip
    scores = _scores(metrics)
    if adapter is None:
        text = f"The plain model, without an adapter: {scores}. Adapters you evaluate are compared with this."
        compared = "unknown"
    elif plain is None:
        text = (f"{adapter}: {scores}. Not compared with the plain model yet: evaluate it too (Use plain model, "
                "then Evaluate) to see what the adapter changes.")  # fmt: skip
        compared = "unknown"
    else:
        compared = _compare(metrics, plain)
        text = {
            "better": f"{adapter} writes closer to your own emails than the plain model: {_against(metrics, plain)}.",
            "worse": f"{adapter} writes less like your emails than the plain model: {_against(metrics, plain)}. "
            "Train longer (Full) or on more pairs.",
            "same": f"No clear difference between {adapter} and the plain model: {_against(metrics, plain)}.",
        }[compared]
    return Verdict(text + _cautions(metrics), compared)


def _value(metrics: dict[str, Any], key: str) -> float | None:
    value = metrics.get(key)
    return float(value) if isinstance(value, (int, float)) else None


def _scores(metrics: dict[str, Any]) -> str:
    parts = [f"{name} {v:.0%}" for key, name in HEADLINE if (v := _value(metrics, key)) is not None]
    return ", ".join(parts) + " with what you really wrote" if parts else "no scores"


def _against(metrics: dict[str, Any], plain: dict[str, Any]) -> str:
    parts = []
    for key, name in HEADLINE:
        mine, theirs = _value(metrics, key), _value(plain, key)
        if mine is not None and theirs is not None:
            parts.append(f"{name} {mine:.0%} against {theirs:.0%}")
    return ", ".join(parts) or "no scores to compare"


def _compare(metrics: dict[str, Any], plain: dict[str, Any]) -> str:
    moves = [
        mine - theirs
        for key, _ in HEADLINE
        if (mine := _value(metrics, key)) is not None and (theirs := _value(plain, key)) is not None
    ]
    if moves and all(m > MARGIN for m in moves):
        return "better"
    if moves and all(m < -MARGIN for m in moves):
        return "worse"
    return "same"


def _cautions(metrics: dict[str, Any]) -> str:
    notes = []
    n = metrics.get("n")
    if isinstance(n, int) and n < FEW:
        notes.append(f"Only {n} emails were drafted: a rough verdict.")
    copied = _value(metrics, "verbatim_overlap")
    if copied:
        notes.append(f"{copied:.0%} of the drafts repeat a training email word for word.")
    ratio = _value(metrics, "length_ratio")
    if ratio is not None and (ratio < 0.6 or ratio > 1.6):
        notes.append(f"Drafts are much {'shorter' if ratio < 1 else 'longer'} than your emails ({ratio:.1f}×).")
    return "".join(f" {note}" for note in notes)
