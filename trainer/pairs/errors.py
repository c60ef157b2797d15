"""Expected errors of the training-pairs feature, each with a message saying what to do."""

from __future__ import annotations

from assistant.errors import MailvoiceError


class PairsError(MailvoiceError):
    """A pair asked for does not exist, or an edit would leave it unusable."""


class DatasetError(MailvoiceError):
    """A dataset file cannot be read or written as a whole (per-row problems are reported, not raised)."""
