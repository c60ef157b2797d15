"""Events and tasks from one incoming mail, as JSON that always validates against the published schema.

Three sources, most trusted first:

1. ``ics``: a text/calendar part is the sender's calendar speaking; its events are taken as they are, and the
   text is not searched for other events.
2. ``rules``: dates and times in the subject and text (:mod:`assistant.inbox.dates`), resolved against the
   Date header, in sentences that speak of a meeting (an event) or of something to do (a task); place, people
   and a title from patterns.
3. ``model``: with a backend, the model writes an event's title, place and people where rules found its date
   (grammar ``fill``), and is asked for the whole object where rules are unsure (a time or an ambiguous date,
   a meeting word with no date: grammar ``items``). The model is never trusted with what it could make up: a
   place or person not in the mail is dropped, and a date the rules did not also read in the mail.

Every item is checked (:func:`assistant.inbox.schema.problems`) before it is returned; anything invalid is
dropped and listed in ``dropped`` with why, and model output that is not valid JSON is counted. Nothing here
raises on bad input; without a backend it is rules and invitations only.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from assistant.inbox import rules
from assistant.inbox.ics import read_ics
from assistant.inbox.mailitem import MailItem, mail_item_from_row, read_original
from assistant.inbox.schema import grammar, parse_when, problems

__all__ = ["Extraction", "MailItem", "extract", "mail_item_from_row", "read_original"]

log = logging.getLogger("mailvoice.inbox")

MAX_ITEMS = 20  # the schema's cap per kind; more are dropped and counted
MAX_TEXT_CHARS = 20_000  # what rules read of a mail: events are near its top, and a 1 MB log's thousands of
# timestamps would cost minutes (matching dates against times in one long line grows with their product)
MODEL_TEXT_CHARS = 1500  # what the model is shown of a long mail
MODEL_FILLS = 4  # model calls for filling in events per mail, at most


@dataclass
class Extraction:
    """What one mail holds: schema-valid ``events`` and ``tasks``, where each came from, and what was dropped."""

    events: list[dict] = field(default_factory=list)
    tasks: list[dict] = field(default_factory=list)
    event_sources: list[str] = field(default_factory=list)
    """Per event: ``ics``, ``rules`` or ``model`` (``rules+model`` when the model filled in a rule's event)."""
    task_sources: list[str] = field(default_factory=list)
    dropped: list[dict] = field(default_factory=list)
    """``{"kind", "source", "reason"}`` for each item left out."""
    model_calls: int = 0
    model_invalid: int = 0
    """Model replies that were not valid JSON for their grammar (dropped, never raised)."""
    cancelled: bool = False
    notes: list[str] = field(default_factory=list)

    def items(self) -> dict[str, list[dict]]:
        """The schema's object."""
        return {"events": self.events, "tasks": self.tasks}

    def to_json(self) -> dict[str, Any]:
        return {
            **self.items(),
            "sources": {"events": self.event_sources, "tasks": self.task_sources},
            "dropped": self.dropped,
            "model": {"calls": self.model_calls, "invalid": self.model_invalid},
            "cancelled": self.cancelled,
            "notes": self.notes,
        }

    def add(self, kind: str, item: dict, source: str, sent_at: dt.datetime | None) -> bool:
        """Add ``item`` if it is valid, plausible and new; else record why not."""
        found = problems(item, kind, sent_at=sent_at)
        if not found and _before(item, kind, sent_at):
            found = ["before the mail was sent"]
        items = self.events if kind == "event" else self.tasks
        if not found and len(items) >= MAX_ITEMS:
            found = [f"more than {MAX_ITEMS} {kind}s in one mail"]
        if found:
            self.dropped.append({"kind": kind, "source": source, "reason": "; ".join(found)[:300]})
            return False
        if any(_same(kind, item, other) for other in items):
            return False
        items.append(item)
        (self.event_sources if kind == "event" else self.task_sources).append(source)
        return True


def _before(item: dict, kind: str, sent_at: dt.datetime | None) -> bool:
    when = (item.get("end") or item.get("start")) if kind == "event" else item.get("due")
    if when is None or sent_at is None:
        return False
    day = parse_when(when)
    day = day.date() if isinstance(day, dt.datetime) else day
    return day < sent_at.date() - dt.timedelta(days=1)


def _same(kind: str, a: dict, b: dict) -> bool:
    if kind == "event":
        return a["start"] == b["start"] or (a["start"][:10] == b["start"][:10] and a["title"] == b["title"])
    return a["what"].lower() == b["what"].lower()


def extract(item: MailItem, backend: Any = None, *, cancel: Callable[[], bool] | None = None) -> Extraction:
    """Events and tasks of ``item``; rules and invitations only when ``backend`` is None.

    Args:
        item: the mail.
        backend: a :class:`assistant.drafting.backend.Backend`, or None.
        cancel: checked before each model call; when it turns true, what rules found is returned
            (``cancelled`` set).
    """
    out = Extraction(notes=list(item.notes))
    if len(item.body) > MAX_TEXT_CHARS:  # a pasted log or report: its dates are not the mail's events
        out.notes.append(f"only the first {MAX_TEXT_CHARS:,} of {len(item.body):,} characters read")
        item = replace(item, body=item.body[:MAX_TEXT_CHARS])
    ics_events = 0
    for text in item.calendars:
        found = read_ics(text, floating=item.sent_at.tzinfo if item.sent_at else None, fallback_title=item.subject)
        out.notes += [f"invitation: {p}" for p in found.problems[:10]]
        for event in found.events:
            ics_events += out.add("event", event, "ics", item.sent_at)
    plan = rules.find(item)
    out.notes += plan.problems[:10]
    for event in plan.events:
        if ics_events:
            break  # the invitation says when; the text around it only repeats it
        if backend is not None and (event.missing or event.weak_title) and not _stopped(out, cancel):
            _fill(backend, item, event, out)
        out.add("event", event.item, event.source, item.sent_at)
    for task in plan.tasks:
        out.add("task", task, "rules", item.sent_at)
    if backend is not None and plan.unsure and not ics_events and not _stopped(out, cancel):
        _find(backend, item, plan, out)
    return out


def _stopped(out: Extraction, cancel: Callable[[], bool] | None) -> bool:
    if cancel is not None and cancel():
        out.cancelled = True
    return out.cancelled


# --- the model ----------------------------------------------------------------------------------------------

_FILL_SYSTEM = (
    "You read one email and describe one event it mentions. Answer with JSON only: a short title (what the "
    "event is), the place exactly as the email says it (null if it says none) and the people taking part as "
    "the email names them."
)
_FIND_SYSTEM = (
    "You read one email and list the events (meetings, calls, appointments) and tasks (things someone is "
    "asked to do) it mentions, as JSON only. Dates are YYYY-MM-DD; times YYYY-MM-DDTHH:MM with the offset "
    "of the email's date. Use null for what the email does not say. An email with none has empty lists."
)


def _ask(backend: Any, system: str, user: str, kind: str, out: Extraction, max_tokens: int) -> dict | None:
    from assistant.drafting.backend import GenerationParams

    params = GenerationParams(max_tokens=max_tokens, temperature=0.0, top_k=1, seed=0, repeat_penalty=1.0,
                              grammar=grammar(kind))  # fmt: skip
    out.model_calls += 1
    try:
        text = "".join(
            backend.stream([{"role": "system", "content": system}, {"role": "user", "content": user}], params)
        )
        reply = json.loads(text)
    except ValueError:  # not JSON (a reply cut at max_tokens, control characters)
        out.model_invalid += 1
        out.dropped.append({"kind": kind, "source": "model", "reason": "the model's reply was not valid JSON"})
        return None
    if not isinstance(reply, dict):
        out.model_invalid += 1
        out.dropped.append({"kind": kind, "source": "model", "reason": "the model's reply was not a JSON object"})
        return None
    return reply


def _mail_text(item: MailItem) -> str:
    sent = item.sent_at.strftime("%A %Y-%m-%d %H:%M %z") if item.sent_at else "unknown"
    body = item.body[:MODEL_TEXT_CHARS]
    return f"Sent: {sent}\nFrom: {item.from_name}\nSubject: {item.subject}\n\n{body}"


def _fill(backend: Any, item: MailItem, event: rules.RuleEvent, out: Extraction) -> None:
    if out.model_calls >= MODEL_FILLS:
        return
    user = f"{_mail_text(item)}\n\nThe event on {event.item['start']} ({event.sentence[:200]}):"
    reply = _ask(backend, _FILL_SYSTEM, user, "fill", out, max_tokens=120)
    if reply is None:
        return
    haystack = rules.fold(f"{item.subject}\n{item.body}\n{item.from_name}\n{' '.join(item.to_names)}")
    title = reply.get("title")
    if isinstance(title, str) and event.weak_title and 2 <= len(title.strip()) <= 120:
        event.item["title"] = title.strip()
        event.source = "rules+model"
    place = reply.get("place")
    if "place" in event.missing and isinstance(place, str) and place.strip():
        near = rules.fold(f"{event.sentence} {event.context}")  # said with the event, not anywhere in the mail
        names = {rules.fold(n) for n in (item.from_name, *item.to_names, *item.from_name.split()) if n}
        if (
            rules.fold(place.strip()) in near
            and rules.fold(place.strip()) not in names
            and not rules.is_date_words(place)
        ):
            event.item["place"] = place.strip()[:160]
            event.source = "rules+model"
        else:
            out.dropped.append({"kind": "place", "source": "model", "reason": "not in the mail"})
    people = reply.get("people")
    if isinstance(people, list):
        grounded = [p.strip() for p in people if isinstance(p, str) and p.strip() and rules.fold(p.strip()) in haystack]
        for person in grounded[:10]:
            if person not in event.item["people"]:
                event.item["people"].append(person[:120])


def _find(backend: Any, item: MailItem, plan: rules.Plan, out: Extraction) -> None:
    reply = _ask(backend, _FIND_SYSTEM, _mail_text(item), "items", out, max_tokens=400)
    if reply is None:
        return
    days = plan.days  # dates the rules read in the mail: the model may only use these
    for kind, key in (("event", "events"), ("task", "tasks")):
        for one in reply.get(key, []) if isinstance(reply.get(key), list) else []:
            if not isinstance(one, dict):
                continue
            when = one.get("start") if kind == "event" else one.get("due")
            if isinstance(when, str) and when[:10] not in days:
                out.dropped.append({"kind": kind, "source": "model", "reason": "a date the mail does not say"})
                continue
            place = one.get("place") if kind == "event" else None
            if isinstance(place, str) and rules.fold(place) not in rules.fold(item.body + item.subject):
                one["place"] = None
            out.add(kind, one, "model", item.sent_at)
