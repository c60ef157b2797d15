"""Categories of mail: what a message asks of the user, from rules first and the model only where they are unsure.

Rules read what the store already knows (automated mail and lists from the import, who it was addressed to,
whether the user answered in the thread, events and tasks found in it) and give a category with a confidence.
Below :data:`UNSURE_BELOW` the model may be asked to choose, with a grammar that admits only the category
names (so its answer is always one of them); without a model the rule's guess stands, marked unsure.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

CATEGORIES = ("needs_reply", "waiting", "event", "task", "fyi", "newsletter", "personal")
"""needs a reply / waiting for someone / meeting or event / task or deadline / FYI / newsletter or
notification / personal."""

LABELS = {
    "needs_reply": "Needs a reply",
    "waiting": "Waiting for someone",
    "event": "Meeting or event",
    "task": "Task or deadline",
    "fyi": "FYI",
    "newsletter": "Newsletter or notification",
    "personal": "Personal",
}

UNSURE_BELOW = 0.6
"""A rule's confidence under this leaves the category open to the model (when one is used)."""

# A request or a question addressed to the reader, in the languages the mail generator and real archives use.
_ASKS = re.compile(
    r"\?|\b(can|could|would|will) you\b|\bplease\b|\blet me know\b|\bwhat do you think\b|\bany thoughts\b|"
    r"\bneed (you|your)\b|\bkönn(en|test) (sie|du)\b|\bbitte\b|\bpourr(iez|ais)[- ](vous|tu)\b|"
    r"\bmerci de\b|\bpuede[s]? \b|\bpor favor\b",
    re.IGNORECASE,
)
_DEADLINE = re.compile(
    r"\b(deadline|due (by|on|date)|by (monday|tuesday|wednesday|thursday|friday|saturday|sunday|tomorrow|eod|"
    r"end of (the )?(day|week|month))|no later than|asap|action required|to-?do)\b",
    re.IGNORECASE,
)
_INVITE_SUBJECT = re.compile(
    r"^\s*((updated )?invitation|accepted|declined|tentative|meeting|einladung|invitación|réunion)\b[: ]",
    re.IGNORECASE,
)
_FREE_MAIL = {
    "gmail.com", "googlemail.com", "yahoo.com", "hotmail.com", "outlook.com", "live.com", "aol.com", "icloud.com",
    "me.com", "mac.com", "gmx.de", "gmx.net", "web.de", "free.fr", "orange.fr", "laposte.net", "yandex.ru",
    "mail.ru", "proton.me", "protonmail.com", "msn.com", "comcast.net", "earthlink.net",
}  # fmt: skip
_PERSONAL_WORDS = re.compile(
    r"\b(mom|mum|dad|love you|birthday|family|kids|grandma|grandpa|wedding|vacation|holiday|hugs|xoxo)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Category:
    name: str
    confidence: float
    reason: str
    source: str = "rules"  # rules | model

    @property
    def sure(self) -> bool:
        return self.confidence >= UNSURE_BELOW

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "label": LABELS[self.name], "confidence": round(self.confidence, 2),
                "reason": self.reason, "source": self.source, "sure": self.sure}  # fmt: skip


@dataclass(frozen=True)
class Facts:
    """What the store knows about a message beyond its own columns (worked out in bulk by the triage)."""

    to_me: bool = False  # one of the user's addresses is in To
    recipients: int = 0  # To and Cc together
    answered: bool = False  # the user wrote in the thread after it
    last_in_thread: bool = True
    events: int = 0
    tasks: int = 0


def asks(text: str) -> bool:
    """Whether ``text`` (the author's own words) asks something of the reader."""
    return bool(_ASKS.search(text or ""))


def categorize(row: dict[str, Any], facts: Facts) -> Category:
    """The category of one stored message by the rules, with how sure they are and why."""
    body = row.get("body") or ""
    subject = row.get("subject") or ""
    if row.get("sent_by_me"):
        if facts.last_in_thread and asks(body):
            return Category("waiting", 0.8, "you asked and nobody has answered yet")
        return Category("fyi", 0.7, "your own message, asking nothing or already answered")
    if row.get("automated"):
        return Category("newsletter", 0.9, f"sent automatically ({row.get('auto_reason') or 'bulk mail'})")
    attachments = _names(row.get("attachments"))
    if (
        facts.events
        or any(a.lower().endswith((".ics", ".vcs")) for a in attachments)
        or _INVITE_SUBJECT.search(subject)
    ):
        why = "an invitation" if not facts.events else f"{facts.events} event{'s' * (facts.events != 1)} in it"
        return Category("event", 0.8, why)
    if facts.tasks or _DEADLINE.search(body) or _DEADLINE.search(subject):
        why = f"{facts.tasks} task{'s' * (facts.tasks != 1)} in it" if facts.tasks else "a deadline in it"
        return Category("task", 0.7, why)
    if facts.to_me and asks(body) and not row.get("list_id"):
        if facts.answered:
            return Category("fyi", 0.7, "you have answered it")
        sure = 0.85 if facts.recipients <= 3 else 0.65
        return Category("needs_reply", sure, "it asks you something and you have not answered")
    sender_domain = (row.get("from_addr") or "").rpartition("@")[2].lower()
    if sender_domain in _FREE_MAIL and not row.get("list_id") and (_PERSONAL_WORDS.search(body) or facts.to_me):
        return Category("personal", 0.6 if _PERSONAL_WORDS.search(body) else 0.5, "from a personal address")
    if row.get("list_id"):
        return Category("fyi", 0.7, "mailing-list mail")
    if not facts.to_me:
        return Category("fyi", 0.65, "you were copied, not addressed")
    return Category("fyi", 0.4, "addressed to you, asks nothing")


def _names(value: str | None) -> list[str]:
    try:
        found = json.loads(value or "[]")
    except ValueError:
        return []
    return [str(n) for n in found if isinstance(n, str)]


GRAMMAR = "root ::= " + " | ".join(f'"{name}"' for name in CATEGORIES)
"""llama.cpp GBNF: the model's answer is exactly one category name."""

_ASK_MODEL = (
    "Sort this email into one category: needs_reply (asks the reader something), waiting (the reader waits "
    "for an answer), event (a meeting or event), task (a task or deadline), fyi (for information), newsletter "
    "(a newsletter or automatic notification), personal (family or friends). Answer with the category only."
)


def ask_model(generate: Callable[[list[dict[str, str]], str], Iterator[str]], row: dict[str, Any]) -> str | None:
    """The model's category for ``row``; ``generate(messages, grammar)`` streams the model's text.

    The grammar admits only the names in :data:`CATEGORIES`; an answer that is still not one (a model that
    ignores grammars) gives None, and the rule's guess stands."""
    text = f"From: {row.get('from_name') or row.get('from_addr') or ''}\nSubject: {row.get('subject') or ''}\n\n"
    text += (row.get("body") or "")[:800]
    messages = [{"role": "system", "content": _ASK_MODEL}, {"role": "user", "content": text}]
    answer = "".join(generate(messages, GRAMMAR)).strip()
    return answer if answer in CATEGORIES else None
