"""The user's corrections of drafts (``assistant.drafting.corrections``) as training material.

- :func:`learnable`: the corrections training may use: not excluded, not the newest tenth (held out to
  measure a refresh), and never an email that is also validation mail (a draft the user edited and sent, then
  imported with their Sent folder, is a validation email of the pairs: training on it would leak).
- :func:`labeller_examples`: the user's own way of asking, as worked examples for the labeller, so the
  instructions it writes for their sent mail read like the ones they type.
- :func:`preference_pairs`: prompt, chosen (the user's text) and rejected (the model's draft) for DPO, from
  the corrections where the user changed the words; optionally rule-made rejected texts for accepted drafts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlite_utils

from assistant.drafting.corrections import Correction, held_out, list_corrections

# trainer.pairs.split.VALIDATION, not imported: the pairs package's builder imports this module (a test checks
# that the two agree)
VALIDATION = "validation"
LABELLER_EXAMPLES = 3  # of the user's own instructions shown to the labeller (the newest rewritten ones)


def _words(text: str) -> str:
    return " ".join(text.split()).casefold()


def _validation_texts(db: sqlite_utils.Database) -> set[str]:
    if not db["pairs"].exists():
        return set()
    return {_words(r[0]) for r in db.execute("SELECT output FROM pairs WHERE split = ?", [VALIDATION])}


def split(db: sqlite_utils.Database) -> tuple[list[Correction], list[Correction]]:
    """(to learn from, held out to measure with), both without excluded corrections and validation mail."""
    validation = _validation_texts(db)
    used = [c for c in list_corrections(db, include_excluded=False) if _words(c.final_text) not in validation]
    return held_out(used)


def learnable(db: sqlite_utils.Database) -> list[Correction]:
    return split(db)[0] if db["corrections"].exists() else []


def labeller_examples(db: sqlite_utils.Database, n: int = LABELLER_EXAMPLES) -> list[tuple[str, str]]:
    """(the email the user kept, the instruction they typed) for their ``n`` newest changed corrections."""
    if not db["corrections"].exists():
        return []
    found = [c for c in reversed(learnable(db)) if c.changed and c.instruction.strip()]
    return [(c.final_text, c.instruction) for c in found[:n]]


@dataclass(frozen=True)
class PreferencePair:
    correction_id: int
    instruction: str
    context: str
    recipient: str
    chosen: str
    rejected: str
    made_by: str  # "edit": the model's own draft; or the rule that made the rejected text


_SIGNOFF = re.compile(r"\n\s*(best|regards|thanks|cheers|kind regards|best regards|thank you)[^\n]*\n[^\n]*\s*$", re.I)


def rule_rejected(text: str) -> list[tuple[str, str]]:
    """Rejected texts made by rule from a text the user accepted: their length doubled, a placeholder left in,
    the greeting and sign-off of someone else (the seed method's kinds of bad drafts)."""
    body = text.strip()
    paragraphs = [p for p in body.split("\n\n") if p.strip()]
    made = []
    if len(paragraphs) >= 2:
        middle = paragraphs[1:-1] or paragraphs[:1]
        made.append(("doubled", "\n\n".join([*paragraphs[:-1], *middle, paragraphs[-1]])))
        made.append(("placeholder", "\n\n".join([paragraphs[0], "[Insert details here]", *paragraphs[1:]])))
    first_line = body.split("\n", 1)
    if len(first_line) == 2:
        made.append(("greeting", "Dear Sir or Madam,\n" + first_line[1]))
    if _SIGNOFF.search(body):
        made.append(("signoff", _SIGNOFF.sub("\n\nYours faithfully,\n[Your Name]", body)))
    return [(why, t) for why, t in made if _words(t) != _words(body)]


def preference_pairs(corrections: list[Correction], *, rule_made: bool = False) -> list[PreferencePair]:
    """A pair for each correction whose words the user changed; with ``rule_made``, also rule-made rejected
    texts for accepted drafts and small edits (said in the adapter's config)."""
    pairs = []
    for c in corrections:
        if not c.instruction.strip():
            continue
        if c.changed:
            pairs.append(PreferencePair(c.id, c.instruction, c.context, c.recipient, c.final_text, c.model_text,
                                        "edit"))  # fmt: skip
        if rule_made and c.kind != "rewrite":
            for why, rejected in rule_rejected(c.final_text):
                pairs.append(PreferencePair(c.id, c.instruction, c.context, c.recipient, c.final_text, rejected, why))
    return pairs
