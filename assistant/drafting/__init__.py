"""Drafting emails in the user's voice, offline: engine, models, prompts, cleaning, saved drafts, CSV.

The public API is :func:`draft` (one email, streamed and saved), :func:`batch` and :func:`export_drafts`;
the GUI and the CLI call only these and the model helpers. Nothing here imports Qt.
"""

from assistant.drafting.backend import Backend, EngineSettings, GenerationParams, LlamaBackend
from assistant.drafting.batch import BatchProgress, BatchReport, batch, export_drafts, read_instructions
from assistant.drafting.drafts import DraftResult, SavedDraft, delete_drafts, draft, list_drafts
from assistant.drafting.models import choose_model, current_model, embedded_model_path, engine_settings, model_info

__all__ = [
    "Backend",
    "BatchProgress",
    "BatchReport",
    "DraftResult",
    "EngineSettings",
    "GenerationParams",
    "LlamaBackend",
    "SavedDraft",
    "batch",
    "choose_model",
    "current_model",
    "delete_drafts",
    "draft",
    "embedded_model_path",
    "engine_settings",
    "export_drafts",
    "list_drafts",
    "model_info",
    "read_instructions",
]
