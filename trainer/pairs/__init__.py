"""Training pairs (instruction -> email) from the user's sent mail: build, review, scrub, split, import, export.

The public API is :func:`build_pairs`, the review functions (:func:`list_pairs`, :func:`edit_instruction`,
:func:`set_status`), :func:`export_pairs` / :func:`import_pairs`, and :func:`training_rows`, which is what
training reads: included pairs, privacy-scrubbed, with their split. Nothing here imports Qt.
"""

from trainer.pairs.build import DEFAULT_LIMIT, BuildProgress, BuildReport, build_pairs, model_identity
from trainer.pairs.dataset import ImportReport, export_pairs, import_pairs
from trainer.pairs.errors import DatasetError, PairsError
from trainer.pairs.scrub import ScrubSettings, load_settings, save_settings, scrub
from trainer.pairs.split import assign_splits, split_for
from trainer.pairs.store import Pair, counts, edit_instruction, get_pair, list_pairs, set_status, training_rows

__all__ = [
    "DEFAULT_LIMIT",
    "BuildProgress",
    "BuildReport",
    "DatasetError",
    "ImportReport",
    "Pair",
    "PairsError",
    "ScrubSettings",
    "assign_splits",
    "build_pairs",
    "counts",
    "edit_instruction",
    "export_pairs",
    "get_pair",
    "import_pairs",
    "list_pairs",
    "load_settings",
    "model_identity",
    "save_settings",
    "scrub",
    "set_status",
    "split_for",
    "training_rows",
]
