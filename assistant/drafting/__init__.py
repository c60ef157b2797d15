"""Drafting emails in the user's voice, offline: engine, models, prompts, cleaning, saved drafts, CSV.

The public API is :func:`draft` (one email, streamed and saved), :func:`batch`, :func:`mail_merge` (a draft per row
of a CSV of recipients, resumable), :func:`export_drafts`,
:func:`refine` (the user's own text rewritten in their voice) and :func:`draft_eml` / :func:`open_in_mail_app`
(a draft handed to the mail app, threaded); the GUI and the CLI call only these and the model helpers. Nothing
here imports Qt.
"""

from assistant.drafting.backend import Backend, EngineSettings, GenerationParams, LlamaBackend
from assistant.drafting.batch import BatchProgress, BatchReport, batch, export_drafts, read_instructions
from assistant.drafting.drafts import DraftResult, SavedDraft, delete_drafts, draft, list_drafts
from assistant.drafting.handoff import draft_eml, open_in_mail_app, save_handoff
from assistant.drafting.mailmerge import MergeProgress, MergeReport, mail_merge
from assistant.drafting.models import choose_model, current_model, embedded_model_path, engine_settings, model_info
from assistant.drafting.refine import HOWS, RefineResult, refine

__all__ = [
    "Backend",
    "BatchProgress",
    "BatchReport",
    "DraftResult",
    "EngineSettings",
    "GenerationParams",
    "HOWS",
    "LlamaBackend",
    "MergeProgress",
    "MergeReport",
    "RefineResult",
    "SavedDraft",
    "batch",
    "choose_model",
    "current_model",
    "delete_drafts",
    "draft",
    "draft_eml",
    "embedded_model_path",
    "engine_settings",
    "export_drafts",
    "list_drafts",
    "mail_merge",
    "model_info",
    "open_in_mail_app",
    "read_instructions",
    "refine",
    "save_handoff",
]
