"""What an evaluation is made of: its configurations, rows, progress and result (shared by running and reporting)."""

from __future__ import annotations

import hashlib
import importlib.resources
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.errors import MailvoiceError
from trainer.pairs.build import model_identity

# Bump when what a cached evaluation draft depends on changes in code (2: recipient and length; 3: the floor;
# 4: a reply's length for a reply whose email answered is not stored; a run-on sign-off learned and held; the
# hold until 60% of the words asked for; a draft that is only the user's name is written again; the name alone
# as a sign-off; 5: a closing word after a sentence and a space held back, a line begun with one that runs on is a
# sentence; 6: a space token after a sentence keeps it ended; 7: an example's request reads as a draft's; 8: the
# request's own lines stop a draft; 9: a draft signed with the name of someone in the thread is signed with the
# user's; 10: the hold until 80% of the words asked for, room to close for the user's own sign-off; 11: the hold
# twice as strong, a sign-off run on after the last sentence ends the draft; 12: that sign-off's name as written;
# 13: a run of a shown example is the user's to repeat only as a habit, in two other emails of theirs; 14: what
# is left of such a run once the habit is taken out counts all together; 15: so does what is left of someone
# else's run once the user's words are taken out; 16: a name of someone in the thread alone after a blank line at
# the end of a draft signs it too, and is signed with the user's; 17: a draft that is only such a name, or a
# greeting and it, is written again; 18: a name made up under a closing, the user's misspelt, or a name with an
# address the user does not sign with is signed with the user's too; 19: a turn start the model writes ends the
# reply, as the end of a turn does; 20: also while the end is held back before the floor; 21: a closing line with
# the user's name is the whole sign-off, and closings anyone uses are held back before the floor too; 22: only a
# closing line that ends with the name as the user writes it, read from its tokens together; 23: a draft's tokens
# count toward its length no further than its words would take; 24: and at least half; 25: a reply is asked for
# with the sender of the email answered as the store holds it, name, address and date; 26: and its whole text,
# cut by the prompt as drafting cuts it, not the pair's first 1,500 characters; 27: the length to a person or an
# organisation learned from mail addressed to them, not mail they were copied on; 28: all of it, not the 200 most
# recent emails to or copying them, and an organisation's counts mail to the person that copies others there).
EVAL_VERSION = 28


class EvalError(MailvoiceError):
    """There is nothing to evaluate yet (no pairs, no validation split) or an option does not fit."""


@dataclass
class EvalProgress:
    """What a running evaluation reports. ``phase``: draft, scoring, embedding, mauve, mauve interval, report."""

    phase: str
    done: int  # pairs drafted or found cached, over every configuration
    total: int
    elapsed: float
    label: str = ""  # the configuration being drafted ("base + examples")
    eta: float | None = None

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


Progress = Callable[[EvalProgress], None]


@dataclass(frozen=True)
class RunConfig:
    model: str  # the GGUF's path
    adapter: str | None  # registered name, None for the base model
    adapter_path: str | None
    examples: bool
    seed: int

    @property
    def label(self) -> str:
        return (self.adapter or "base") + (" + examples" if self.examples else "")

    def key(self) -> str:
        """What a draft depends on (the files by identity, not by path)."""
        parts = [EVAL_VERSION, model_identity(self.model), self.adapter or "",
                 model_identity(self.adapter_path) if self.adapter_path else "", self.examples, self.seed,
                 _prompts_digest()]  # fmt: skip
        return hashlib.sha256(json.dumps(parts).encode("utf-8")).hexdigest()[:32]

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "model": Path(self.model).name, "adapter": self.adapter,
                "examples": self.examples, "seed": self.seed}  # fmt: skip


@dataclass
class EvalRow:
    """One configuration's drafts and scores."""

    config: RunConfig
    items: list[dict[str, Any]]  # per pair: pair_id, instruction, context, real, draft, examples, scores
    metrics: dict[str, Any] = field(default_factory=dict)
    generated: int = 0
    cached: int = 0
    skipped: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.config.label


@dataclass
class EvalResult:
    """A finished evaluation. ``metrics`` is the single configuration's; for ablations it maps each row's
    label to its metrics."""

    kind: str  # eval | ablations
    rows: list[EvalRow]
    metrics: dict[str, Any]
    json_path: Path
    html_path: Path
    eval_id: int
    seconds: float
    notices: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "metrics": self.metrics, "json_path": str(self.json_path),
                "html_path": str(self.html_path), "id": self.eval_id, "seconds": round(self.seconds, 3),
                "notices": self.notices}  # fmt: skip


def _prompts_digest() -> str:
    folder = importlib.resources.files("resources") / "prompts"
    h = hashlib.sha256()
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".txt"):
            h.update(entry.name.encode() + b"\0" + entry.read_bytes())
    return h.hexdigest()[:16]
