"""Evaluation: draft the validation split through the drafting core, score against the real emails, report.

The public API is :func:`evaluate` (one configuration), :func:`run_ablations` (base, base + examples,
adapter, adapter + examples) and :func:`list_evals`; each run leaves ``report.json`` and ``report.html``
and a row in the ``evals`` table. Nothing here imports Qt.
"""

from trainer.evaluation.metrics import METRICS, Scores, score
from trainer.evaluation.run import evaluate, run_ablations
from trainer.evaluation.store import list_evals
from trainer.evaluation.types import EvalError, EvalProgress, EvalResult, EvalRow

__all__ = [
    "METRICS",
    "EvalError",
    "EvalProgress",
    "EvalResult",
    "EvalRow",
    "Scores",
    "evaluate",
    "list_evals",
    "run_ablations",
    "score",
]
