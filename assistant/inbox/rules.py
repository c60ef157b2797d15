"""The rules of extraction: which sentences speak of an event or a task, and their title, place and people.

Deterministic and cheap (a mail in well under a millisecond), so triage can run them over a whole inbox
without a model. What they cannot settle they mark ``unsure`` for the model to look at.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from assistant.inbox.dates import DATE_WORD, ZONE_WORDS, Found, find_dates
from assistant.inbox.ics import offset_name
from assistant.inbox.mailitem import MailItem

_EVENT_WORDS = re.compile(
    r"\b(?:meeting|meet(?:ing)?s?|call|sync|catch[- ]up|lunch|dinner|breakfast|brunch|coffee|drinks|appointment|"
    r"interview|review|demo|workshop|webinar|conference|presentation|session|stand-?up|1:1|one-on-one|party|"
    r"reception|hike|visit|dentist|doctor|concert|rehearsal|kick-?off|offsite|retro|planning|training|seminar|"
    r"ceremony|wedding|barbecue|bbq|invitation|invited?|teleconference|banquet|luncheon|shoot|board|"
    r"treffen|besprechung|termin|mittagessen|abendessen|anruf|telefonat|sitzung|"
    r"réunion|reunion|rendez-vous|rdv|déjeuner|dîner|appel|visio|"
    r"reunión|cita|almuerzo|comida|cena|llamada|quedamos|vemos)\b",
    re.I,
)
_TASK_WORDS = re.compile(
    r"\b(?:please|pls|can you|could you|would you|need you to|make sure|don't forget|do not forget|remember to|"
    r"deadline|due|submit|send (?:me|us|over)|"
    r"bitte|kannst du|könntest du|können sie|denk(?:e|t)? (?:bitte )?daran|frist|"
    r"merci de|pourrais-tu|pourriez-vous|peux-tu|n'oublie pas|date limite|"
    r"por favor|puedes|podrías|podrias|no olvides|fecha límite|fecha limite)\b",
    re.I,
)
_DUE_WORDS = re.compile(
    r"\b(?:by|until|before|no later than|due|deadline|bis|bis zum|spätestens|avant|au plus tard|d'ici|"
    r"antes del?|a más tardar|para el)\b\s*(?:the\s*|le\s*|el\s*|zum\s*|am\s*)?$",
    re.I,
)
_SUBJECT_PREFIX = re.compile(
    r"^\s*(?:(?:re|fw|fwd|aw|wg|tr|rv|sv|antw|invitation|einladung|updated invitation)\s*:\s*)+", re.I
)
_LABELLED_PLACE = re.compile(
    r"(?:^|\n|\s{2})\s*[*•-]?\s*(?:location|where|place|venue|room|address|ort|raum|lieu|salle|lugar|sala|dirección)"
    r"\s*:\s*(?P<p>[^\n]{2,120}?)(?=\s{2}|\s+(?-i:[A-Z][A-Z ]{2,}):|\n|$)",
    re.I,
)
_ONLINE = re.compile(r"\b(zoom|microsoft teams|teams|google meet|skype|webex|jitsi)\b", re.I)
_ROOM = re.compile(
    r"\b(?:in|im|en|dans)\s+(?:the\s+|la\s+|el\s+|der\s+)?(?P<p>(?:conference\s+room|meeting\s+room|room|raum|salle|sala|"
    r"building|bldg\.?)\s+[A-Z0-9][\w-]*(?:\s+\d[\w-]*)?)",
    re.I,
)
_VENUE_NOUNS = (
    r"place|cafe|café|restaurant|bar|office|pub|park|spot|library|hotel|station|truck|studio|gym|lobby|kitchen|"
    r"cafeteria|canteen|kantine|bistro|brewery|bakery|club|center|centre|hall|museum|garden|beach|trailhead"
)
_VENUE = re.compile(
    r"\b(?:at|in|@|im|in der|au|à la|à l'|en el|en la)\s+(?P<p>(?:the|our|that|my|your|a)\s+[\w'’ -]{0,30}?\b(?:"
    + _VENUE_NOUNS
    + r")\b(?:\s+(?:on|in|by|near|at)\s+(?:the\s+)?(?-i:[A-Z][\w'-]*(?:\s+[A-Z][\w'-]*)*)|\s+downtown)?)",
    re.I,
)
_NAMED_PLACE = re.compile(
    r"\b(?:at|in|@|im|au|chez|en)\s+(?P<p>(?:the\s+|el\s+|la\s+|le\s+|der\s+|die\s+|dem\s+)?[A-Z][\w'’&.-]*(?:\s+(?:[A-Z0-9][\w'’&.-]*|on|of|de|del|la|am|an|der))*)"
)
_WITH = re.compile(
    r"\b(?:with|mit|avec|con)\s+(?P<n>[A-Z][a-zà-ÿ]+(?:\s+[A-Z][a-zà-ÿ]+)?(?:\s*(?:,|and|und|et|y)\s*[A-Z][a-zà-ÿ]+(?:\s+[A-Z][a-zà-ÿ]+)?)*)"
)
_NOT_PLACES = {"i", "we", "you", "the", "a", "my", "our", "this", "next", "least", "all", "first", "last", "ET", "PT"}
_LANG_WORDS = {
    "de": re.compile(r"\b(?:und|der|die|das|ich|wir|nicht|bitte|uhr|morgen|am|um|mit|für)\b", re.I),
    "fr": re.compile(r"\b(?:et|le|la|les|je|nous|pas|merci|vous|avec|pour|à|demain)\b", re.I),
    "es": re.compile(r"\b(?:y|el|los|las|yo|nosotros|gracias|para|con|mañana|por)\b", re.I),
    "en": re.compile(r"\b(?:and|the|is|we|you|not|please|thanks|with|for|at|on)\b", re.I),
}


@dataclass
class RuleEvent:
    """An event the rules found, with what they could not fill."""

    item: dict
    sentence: str
    context: str = ""
    """The sentences after it (where a place is often said)."""
    missing: set[str] = field(default_factory=set)
    weak_title: bool = False
    source: str = "rules"


@dataclass
class Plan:
    events: list[RuleEvent] = field(default_factory=list)
    tasks: list[dict] = field(default_factory=list)
    unsure: bool = False
    """Something looks like an event or task the rules could not settle (for the model, when there is one)."""
    days: set[str] = field(default_factory=set)
    """Every date (YYYY-MM-DD) the rules read in the mail."""
    problems: list[str] = field(default_factory=list)


def fold(text: str) -> str:
    return " ".join(text.casefold().replace("’", "'").split())


def is_date_words(text: str) -> bool:
    return bool(re.fullmatch(r"[\d\s:/.,-]*", text)) or bool(find_dates(text, None)[0])


def language(text: str) -> str:
    counts = {lang: len(rx.findall(text)) for lang, rx in _LANG_WORDS.items()}
    return max(counts, key=lambda k: (counts[k], k == "en"))


def units(subject: str, body: str) -> list[str]:
    """The subject, then the body's sentences (wrapped lines joined; a "Key: value" line is one unit)."""
    out = [subject.strip()] if subject.strip() else []
    for para in re.split(r"\n\s*\n", body):
        lines, current = [], []
        for line in para.split("\n"):
            if re.match(r"\s*(?:[-*•]|\d+[.)]\s|[\w ]{2,20}:\s)", line) and current:
                lines.append(" ".join(current))
                current = []
            current.append(line.strip())
        lines.append(" ".join(current))
        for line in lines:
            out += [s for s in re.split(r"(?<=[a-zà-ÿ)\]][.!?])\s+(?=[A-ZÀ-Ý¿¡])|(?<=[!?])\s+", line) if s.strip()]
    return out


def title_of(subject: str, sentence: str, people: list[str]) -> tuple[str, bool]:
    """A title: the subject when it names the event, else the event word of the sentence (weak)."""
    clean = _SUBJECT_PREFIX.sub("", subject).strip()
    if clean and _EVENT_WORDS.search(clean):
        return clean[:120], False
    m = _EVENT_WORDS.search(sentence)
    word = m.group(0) if m else "Event"
    word = {"meet": "Meeting", "meeting": "Meeting", "invited": "Invitation", "invite": "Invitation"}.get(
        word.lower(), word
    )
    title = word[:1].upper() + word[1:]
    if people:
        title += " with " + ", ".join(people[:3])
    return title[:120], True


def place_of(text: str) -> str | None:
    """Where, when the text says it: a labelled line, a room, a venue, a named place, a video-call service."""
    for rx in (_LABELLED_PLACE, _ROOM, _VENUE):
        if m := rx.search(text):
            return _trim(m.group("p"))
    for m in _NAMED_PLACE.finditer(text):
        found = _trim(m.group("p"))
        first = found.split()[0] if found else ""
        ok = found and first.lower() not in _NOT_PLACES and first.lower() not in ZONE_WORDS
        if ok and not is_date_words(found):
            return found
    if m := _ONLINE.search(text):
        name = m.group(1)
        return {"teams": "Microsoft Teams"}.get(name.lower(), name[:1].upper() + name[1:])
    return None


def _trim(place: str) -> str:
    for m in re.finditer(r"\s+(?:at|on|um|am|à|a las|le|el|from|to|for|with|mit|avec|con)\s+", place):
        if DATE_WORD.match(place, m.end()):  # "China on December 5": the place ends before its date
            place = place[: m.start()]
            break
    place = re.split(r"(?<=\w\w)[.!?]\s|\s\(", place)[0]  # "Bridlewood Golf Club. These events..."
    place = re.sub(r"[\s,;:.!?)]+$", "", place.strip())
    words = place.split()
    while words and words[-1].lower() in ("on", "of", "de", "del", "la", "am", "an", "der", "the", "in", "at"):
        words.pop()
    return " ".join(words)[:160]


def people_of(text: str) -> list[str]:
    m = _WITH.search(text)
    if not m:
        return []
    names = re.split(r"\s*(?:,|\band\b|\bund\b|\bet\b|\by\b)\s*", m.group("n"))
    return [n for n in names if n and n.lower() not in _NOT_PLACES][:10]


def _iso(day: dt.date, time: dt.time | None, zone: str | None, sent_at: dt.datetime | None) -> tuple[str, str | None]:
    if time is None:
        return day.isoformat(), None
    if zone is not None:
        from zoneinfo import ZoneInfo

        when = dt.datetime.combine(day, time, ZoneInfo(zone))
        return when.isoformat(timespec="minutes"), zone
    tz = sent_at.tzinfo if sent_at is not None else dt.UTC
    when = dt.datetime.combine(day, time, tz)
    name = "UTC" if sent_at is None else offset_name(when.utcoffset())
    return when.isoformat(timespec="minutes"), name


def _event_item(found: Found, sentence: str, context: str, item: MailItem) -> RuleEvent:
    start, zone = _iso(found.day, found.time, found.zone, item.sent_at)
    end = None
    if found.end is not None and found.time is not None and found.end > found.time:
        end = _iso(found.day, found.end, found.zone, item.sent_at)[0]
    people = people_of(sentence)
    title, weak = title_of(item.subject, sentence, people)
    place = place_of(sentence) or place_of(context)
    event = {"title": title, "start": start, "end": end, "all_day": found.time is None, "timezone": zone,
             "place": place, "people": people}  # fmt: skip
    missing = {"place"} if place is None else set()
    return RuleEvent(event, sentence, context, missing, weak)


def _task_item(found: Found | None, sentence: str, item: MailItem) -> dict:
    what = re.sub(r"^(?:hi|hey|hello|hallo|bonjour|hola|dear)\b[^,]*,\s*", "", sentence.strip(), flags=re.I)
    due = None
    if found is not None and found.day is not None:
        due = _iso(found.day, found.time, found.zone, item.sent_at)[0]
    return {"what": what[:200] or "Task", "who": None, "due": due}


def _with_days(found: list[Found], carried: Found | None) -> tuple[list[Found], bool]:
    """Give a time with no date the date of the sentence before (``carried``, when that one had no time);
    whether a time was left without a date (the model may place it; rules do not guess)."""
    out, alone = [], False
    for f in found:
        if f.day is None:
            if carried is None or carried.time is not None:
                alone = True
                continue
            f = Found(carried.day, f.time, f.end, f.zone, f.start, f.stop, f.text, carried.sure)
        out.append(f)
    return out, alone


def find(item: MailItem) -> Plan:
    """Events and tasks in the subject and text of ``item``, by rules."""
    plan = Plan()
    day_first = language(f"{item.subject}\n{item.body}") in ("de", "fr", "es")
    parts = units(item.subject, item.body)
    subject_event = bool(_EVENT_WORDS.search(item.subject))
    carried: Found | None = None
    for i, sentence in enumerate(parts):
        found, problems = find_dates(sentence, item.sent_at, day_first=day_first)
        plan.problems += problems
        found, alone = _with_days(found, carried)
        plan.unsure = plan.unsure or (alone and bool(_EVENT_WORDS.search(sentence)))
        dated = [f for f in found if f.day is not None]
        plan.days.update(f.day.isoformat() for f in dated)
        if not dated:
            if _EVENT_WORDS.search(sentence) and re.search(r"\b(?:when|wann|quand|cuándo|time|slot)\b", sentence, re.I):
                plan.unsure = True
            if _TASK_WORDS.search(sentence) and "?" not in sentence[:1]:
                plan.tasks.append(_task_item(None, sentence, item))
            continue
        carried = dated[-1]
        context = " ".join(parts[i + 1 : i + 3])
        is_event = _EVENT_WORDS.search(sentence) or (subject_event and i > 0)
        for f in dated:
            due = _DUE_WORDS.search(sentence[: f.start])
            if due or (_TASK_WORDS.search(sentence) and not _EVENT_WORDS.search(sentence)):
                plan.tasks.append(_task_item(f, sentence, item))
            elif is_event:
                plan.events.append(_event_item(f, sentence, context, item))
                plan.unsure = plan.unsure or not f.sure
            else:
                plan.unsure = True
    plan.events = _merge(plan.events)
    return plan


def _merge(events: list[RuleEvent]) -> list[RuleEvent]:
    """One event per day: a date said alone ("Lunch Friday") gives way to the same day with a time."""
    timed_days = {e.item["start"][:10] for e in events if not e.item["all_day"]}
    out, seen = [], set()
    for e in events:
        key = e.item["start"]
        if (e.item["all_day"] and key in timed_days) or key in seen:
            continue
        seen.add(key)
        out.append(e)
    return out
