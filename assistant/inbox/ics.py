"""Invitations in iCalendar (RFC 5545): events read out of text/calendar parts, and events written as .ics.

A small reader and writer of our own rather than a library: Mailvoice needs only VEVENT's few properties
(DTSTART, DTEND or DURATION, SUMMARY, LOCATION, ORGANIZER, ATTENDEE, STATUS) and VTIMEZONE's offsets, no
icalendar package is installed, and invitations in real mail are often broken (no VTIMEZONE for a TZID,
Windows zone names, folds that split a UTF-8 character, lines cut short). This reader never raises: what
it cannot read it names in ``problems`` and goes on.

Lines are unfolded as bytes before decoding, so a fold inside a multi-byte character joins up again.
Times are resolved in this order: ``Z`` (UTC); a TZID that names an IANA zone (also inside Mozilla's
``/mozilla.org/.../Europe/Berlin``); a Windows zone name Outlook and Exchange write ("W. Europe Standard
Time"); the offsets of the message's own VTIMEZONE; a floating time takes the mail's own offset.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MAX_EVENTS = 50  # an invitation with more (a whole calendar exported) is cut here, and says so
_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_DATETIME = re.compile(r"^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})?(Z?)$")
_DURATION = re.compile(r"^([+-])?P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")
_OFFSET = re.compile(r"^([+-])(\d{2})(\d{2})(\d{2})?$")
_BYDAY = re.compile(r"^([+-]?\d)?(MO|TU|WE|TH|FR|SA|SU)$")
_DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")

# The Windows zone names Outlook and Exchange put in TZID, for the zones most mail comes from
# (CLDR's windowsZones.xml, territory 001).
WINDOWS_ZONES = {
    "Dateline Standard Time": "Etc/GMT+12", "Hawaiian Standard Time": "Pacific/Honolulu",
    "Alaskan Standard Time": "America/Anchorage", "Pacific Standard Time": "America/Los_Angeles",
    "US Mountain Standard Time": "America/Phoenix", "Mountain Standard Time": "America/Denver",
    "Central Standard Time": "America/Chicago", "Central America Standard Time": "America/Guatemala",
    "Eastern Standard Time": "America/New_York", "Atlantic Standard Time": "America/Halifax",
    "Newfoundland Standard Time": "America/St_Johns", "E. South America Standard Time": "America/Sao_Paulo",
    "Argentina Standard Time": "America/Buenos_Aires", "SA Pacific Standard Time": "America/Bogota",
    "Central Standard Time (Mexico)": "America/Mexico_City", "UTC": "UTC", "Coordinated Universal Time": "UTC",
    "GMT Standard Time": "Europe/London", "Greenwich Standard Time": "Atlantic/Reykjavik",
    "W. Europe Standard Time": "Europe/Berlin", "Romance Standard Time": "Europe/Paris",
    "Central Europe Standard Time": "Europe/Budapest", "Central European Standard Time": "Europe/Warsaw",
    "E. Europe Standard Time": "Europe/Chisinau", "FLE Standard Time": "Europe/Kiev",
    "GTB Standard Time": "Europe/Bucharest", "Israel Standard Time": "Asia/Jerusalem",
    "South Africa Standard Time": "Africa/Johannesburg", "Russian Standard Time": "Europe/Moscow",
    "Turkey Standard Time": "Europe/Istanbul", "Arabian Standard Time": "Asia/Dubai",
    "India Standard Time": "Asia/Kolkata", "China Standard Time": "Asia/Shanghai",
    "Singapore Standard Time": "Asia/Singapore", "Tokyo Standard Time": "Asia/Tokyo",
    "Korea Standard Time": "Asia/Seoul", "AUS Eastern Standard Time": "Australia/Sydney",
    "E. Australia Standard Time": "Australia/Brisbane", "New Zealand Standard Time": "Pacific/Auckland",
}  # fmt: skip


@dataclass(slots=True)
class Component:
    """One BEGIN/END block: its properties as (name, params, value) in order, and the blocks inside it."""

    name: str
    props: list[tuple[str, dict[str, str], str]] = field(default_factory=list)
    children: list[Component] = field(default_factory=list)

    def first(self, name: str) -> tuple[dict[str, str], str] | None:
        for prop, params, value in self.props:
            if prop == name:
                return params, value
        return None

    def all(self, name: str) -> list[tuple[dict[str, str], str]]:
        return [(params, value) for prop, params, value in self.props if prop == name]


@dataclass(slots=True)
class IcsResult:
    """The events of one calendar text (schema-shaped dicts) and what could not be read."""

    events: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    method: str = ""


def unfold(data: str | bytes) -> list[str]:
    """Content lines of a calendar, unfolded (CRLF or LF, then a space or tab continues the line)."""
    raw = data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass")
    raw = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    raw = re.sub(rb"\n[ \t]", b"", raw)
    text = raw.decode("utf-8", errors="replace")
    return [line for line in text.split("\n") if line.strip()]


def parse_line(line: str) -> tuple[str, dict[str, str], str] | None:
    """``NAME;PARAM=a;PARAM="b:c":value`` as (NAME, {PARAM: value}, value); None when it is not a content line."""
    i, n = 0, len(line)
    while i < n and line[i] not in ";:":
        i += 1
    name = line[:i].strip().upper()
    if not name or i >= n or not re.fullmatch(r"[A-Z0-9-]+", name):
        return None
    params: dict[str, str] = {}
    while i < n and line[i] == ";":
        j = line.find("=", i)
        if j < 0:
            return None
        key = line[i + 1 : j].strip().upper()
        i = j + 1
        values = []
        while True:
            if i < n and line[i] == '"':
                end = line.find('"', i + 1)
                if end < 0:
                    return None
                values.append(line[i + 1 : end])
                i = end + 1
            else:
                start = i
                while i < n and line[i] not in ";:,":
                    i += 1
                values.append(line[start:i])
            if i < n and line[i] == ",":
                i += 1
                continue
            break
        params[key] = ",".join(values)
    if i >= n or line[i] != ":":
        return None
    return name, params, line[i + 1 :]


def parse_components(data: str | bytes) -> tuple[list[Component], list[str]]:
    """The top-level components of a calendar text, and the lines it had to skip."""
    root = Component("ROOT")
    stack = [root]
    problems: list[str] = []
    for line in unfold(data):
        parsed = parse_line(line)
        if parsed is None:
            problems.append(f"unreadable line {line[:40]!r}")
            continue
        name, params, value = parsed
        if name == "BEGIN":
            comp = Component(value.strip().upper())
            stack[-1].children.append(comp)
            stack.append(comp)
        elif name == "END":
            if len(stack) > 1 and stack[-1].name == value.strip().upper():
                stack.pop()
            else:
                problems.append(f"END:{value.strip()[:20]} without its BEGIN")
        else:
            stack[-1].props.append((name, params, value))
    if len(stack) > 1:
        problems.append(f"{stack[-1].name} not closed")
    return root.children, problems


def unescape(value: str) -> str:
    """A TEXT value as written: ``\\n``, ``\\,``, ``\\;`` and ``\\\\`` turned back."""
    return re.sub(r"\\([nN,;\\])", lambda m: "\n" if m.group(1) in "nN" else m.group(1), value).strip()


def escape(value: str) -> str:
    return (
        value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\r\n", "\\n").replace("\n", "\\n")
    )


# --- time zones --------------------------------------------------------------------------------------


def iana_zone(tzid: str) -> ZoneInfo | None:
    """The IANA zone a TZID names, directly, in a Mozilla-style path, or as a Windows zone name."""
    tzid = tzid.strip().strip('"')
    candidates = [tzid, WINDOWS_ZONES.get(tzid, "")]
    parts = [p for p in tzid.split("/") if p]
    candidates += ["/".join(parts[-k:]) for k in (3, 2) if len(parts) >= k]
    for name in candidates:
        if name and re.fullmatch(r"[A-Za-z_]+(/[A-Za-z0-9_+-]+){0,2}", name):
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return None


def _offset(text: str) -> dt.timedelta | None:
    m = _OFFSET.match(text.strip())
    if not m:
        return None
    sign = -1 if m.group(1) == "-" else 1
    return sign * dt.timedelta(hours=int(m.group(2)), minutes=int(m.group(3)), seconds=int(m.group(4) or 0))


def _rule_onset(rrule: str, year: int, at: dt.time) -> dt.datetime | None:
    """When a yearly BYMONTH/BYDAY rule (``BYDAY=-1SU;BYMONTH=10``) falls in ``year``."""
    parts = dict(p.split("=", 1) for p in rrule.upper().split(";") if "=" in p)
    try:
        month = int(parts.get("BYMONTH", "0"))
        m = _BYDAY.match(parts.get("BYDAY", ""))
        if not (1 <= month <= 12 and m):
            return None
        nth, weekday = int(m.group(1) or 1), _DAYS.index(m.group(2))
    except ValueError:
        return None
    if nth > 0:
        first = dt.date(year, month, 1)
        day = first + dt.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (nth - 1))
    else:
        last = (dt.date(year + month // 12, month % 12 + 1, 1)) - dt.timedelta(days=1)
        day = last - dt.timedelta(days=(last.weekday() - weekday) % 7 + 7 * (-nth - 1))
    if day.month != month:
        return None
    return dt.datetime.combine(day, at)


def vtimezone_offset(zone: Component, local: dt.datetime) -> dt.timedelta | None:
    """The UTC offset a VTIMEZONE gives to the wall-clock time ``local``: the latest onset before it wins."""
    best: tuple[dt.datetime, dt.timedelta] | None = None
    for part in zone.children:
        if part.name not in ("STANDARD", "DAYLIGHT"):
            continue
        to = part.first("TZOFFSETTO")
        start = part.first("DTSTART")
        offset = _offset(to[1]) if to else None
        begun = _wall(start[1]) if start else None
        if offset is None or begun is None:
            continue
        rule = part.first("RRULE")
        onsets = [begun]
        if rule:
            onsets = [o for y in (local.year - 1, local.year) if (o := _rule_onset(rule[1], y, begun.time()))]
        for onset in onsets:
            if onset <= local and (best is None or onset > best[0]):
                best = (onset, offset)
    return best[1] if best else None


def _wall(value: str) -> dt.datetime | None:
    m = _DATETIME.match(value.strip())
    if not m:
        return None
    y, mo, d, h, mi, s = (int(g or 0) for g in m.groups()[:6])
    try:
        return dt.datetime(y, mo, d, h, mi, s)
    except ValueError:
        return None


# --- reading events ------------------------------------------------------------------------------------


def _iso(when: dt.date | dt.datetime) -> str:
    if isinstance(when, dt.datetime):
        return when.isoformat(timespec="seconds" if when.second else "minutes")
    return when.isoformat()


def offset_name(offset: dt.timedelta | None) -> str:
    """``+HH:MM`` for an offset (``UTC`` names zero only when it was said as UTC)."""
    minutes = int((offset or dt.timedelta()).total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


class _Times:
    """Turns DTSTART/DTEND values into dates or aware times, with the zones of one calendar."""

    def __init__(self, zones: dict[str, Component], floating: dt.tzinfo | None, problems: list[str]):
        self.zones = zones
        self.floating = floating
        self.problems = problems

    def when(self, params: dict[str, str], value: str) -> tuple[dt.date | dt.datetime, str | None] | None:
        value = value.strip()
        date = _DATE.match(value)
        if date or params.get("VALUE", "").upper() == "DATE":
            if not date:
                self.problems.append(f"date {value[:20]!r} is not YYYYMMDD")
                return None
            try:
                return dt.date(*(int(g) for g in date.groups())), None
            except ValueError:
                self.problems.append(f"no such date {value!r}")
                return None
        wall = _wall(value)
        if wall is None:
            self.problems.append(f"time {value[:24]!r} is not YYYYMMDDTHHMMSS")
            return None
        if value.endswith("Z"):
            return wall.replace(tzinfo=dt.UTC), "UTC"
        tzid = params.get("TZID")
        if tzid:
            zone = iana_zone(tzid)
            if zone is not None:
                return wall.replace(tzinfo=zone), zone.key
            if tzid in self.zones and (offset := vtimezone_offset(self.zones[tzid], wall)) is not None:
                return wall.replace(tzinfo=dt.timezone(offset)), offset_name(offset)
            self.problems.append(f"unknown time zone {tzid[:40]!r}: read as the mail's own")
        if self.floating is not None:
            return wall.replace(tzinfo=self.floating), None
        return wall.replace(tzinfo=dt.UTC), None


def _duration(value: str) -> dt.timedelta | None:
    m = _DURATION.match(value.strip().upper())
    if not m or not any(m.groups()[1:]):
        return None
    weeks, days, hours, minutes, seconds = (int(g or 0) for g in m.groups()[1:])
    span = dt.timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
    return -span if m.group(1) == "-" else span


def _person(params: dict[str, str], value: str) -> str:
    name = params.get("CN", "").strip().strip('"')
    if name:
        return name
    value = value.strip()
    return value[7:] if value.lower().startswith("mailto:") else value


def _written_zone(comp: Component) -> tuple[str, dt.tzinfo] | None:
    found = comp.first("X-MAILVOICE-TZ")
    if found is None:
        return None
    name = found[1].strip()
    if (offset := _offset(name.replace(":", ""))) is not None:
        return name, dt.timezone(offset)
    zone = iana_zone(name)
    return (zone.key, zone) if zone is not None else None


def _event(comp: Component, times: _Times, fallback_title: str) -> dict | None:
    start = comp.first("DTSTART")
    if start is None:
        times.problems.append("an event without DTSTART")
        return None
    begun = times.when(*start)
    if begun is None:
        return None
    when, tz = begun
    end_value = None
    zone = _written_zone(comp)
    if (end := comp.first("DTEND")) is not None and (ended := times.when(*end)) is not None:
        end_value = ended[0]
    elif (span := comp.first("DURATION")) is not None and (delta := _duration(span[1])) is not None:
        end_value = when + delta
    all_day = not isinstance(when, dt.datetime)
    if zone is not None and not all_day:  # written by to_ics: back into the zone the mail named
        tz, when = zone[0], when.astimezone(zone[1])
        end_value = end_value.astimezone(zone[1]) if isinstance(end_value, dt.datetime) else end_value
    if end_value is not None and (isinstance(end_value, dt.datetime) == all_day or end_value < when):
        times.problems.append("an end before its start, or of another kind: left out")
        end_value = None
    summary = comp.first("SUMMARY")
    location = comp.first("LOCATION")
    people: list[str] = []
    for prop, params, value in comp.props:
        if prop in ("ORGANIZER", "ATTENDEE", "X-MAILVOICE-PERSON"):
            who = unescape(value) if prop.startswith("X-") else _person(params, value)
            if who and who[:120] not in people:
                people.append(who[:120])
    place = unescape(location[1]) if location else ""
    return {
        "title": (unescape(summary[1]) if summary else "")[:120] or fallback_title[:120] or "Event",
        "start": _iso(when),
        "end": _iso(end_value) if end_value is not None else None,
        "all_day": all_day,
        "timezone": tz,
        "place": place[:160] or None,
        "people": [p for p in people if p][:30],
    }


def read_ics(data: str | bytes, *, floating: dt.tzinfo | None = None, fallback_title: str = "") -> IcsResult:
    """The events of a calendar text; never raises (what could not be read is in ``problems``).

    Args:
        data: the text/calendar part, as bytes or text.
        floating: the zone for times given without one (the mail's own offset).
        fallback_title: the title of an event without SUMMARY (the mail's subject).
    """
    result = IcsResult()
    comps, result.problems = parse_components(data)
    calendars = [c for c in comps if c.name == "VCALENDAR"] or [Component("VCALENDAR", children=comps)]
    for cal in calendars:
        method = cal.first("METHOD")
        result.method = result.method or (method[1].strip().upper() if method else "")
        zones = {}
        for zone in (c for c in cal.children if c.name == "VTIMEZONE"):
            if (tzid := zone.first("TZID")) is not None:
                zones[tzid[1].strip()] = zone
        times = _Times(zones, floating, result.problems)
        for comp in (c for c in cal.children if c.name == "VEVENT"):
            status = comp.first("STATUS")
            if result.method == "CANCEL" or (status and status[1].strip().upper() == "CANCELLED"):
                result.problems.append("a cancelled event: left out")
                continue
            if len(result.events) >= MAX_EVENTS:
                result.problems.append(f"more than {MAX_EVENTS} events: the rest left out")
                return result
            event = _event(comp, times, fallback_title)
            if event is not None:
                result.events.append(event)
    if not result.events and not calendars[0].children and not comps:
        result.problems.append("no calendar in the text")
    return result


# --- writing ------------------------------------------------------------------------------------------


def fold(line: str) -> str:
    """One content line folded at 75 octets (RFC 5545 3.1), never inside a UTF-8 character."""
    out, current, size, limit = [], [], 0, 75
    for ch in line:
        width = len(ch.encode("utf-8"))
        if size + width > limit:
            out.append("".join(current))
            current, size, limit = [" "], 1, 75
        current.append(ch)
        size += width
    out.append("".join(current))
    return "\r\n".join(out)


def event_uid(event: dict) -> str:
    """A UID that stays the same for the same event (title and start), so a calendar updates, not doubles."""
    key = f"{event['title'].strip().lower()}|{event['start']}"
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:24] + "@mailvoice"


def _stamp(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def _value(iso: str, all_day: bool) -> tuple[str, str]:
    if all_day or "T" not in iso:
        return ";VALUE=DATE", iso[:10].replace("-", "")
    return "", _stamp(dt.datetime.fromisoformat(iso.replace("Z", "+00:00")))


def to_ics(events: list[dict], *, stamp: dt.datetime | None = None) -> str:
    """Events (schema-shaped dicts) as one RFC 5545 calendar: CRLF line ends, lines folded at 75 octets.

    Times are written in UTC, which every client reads without a VTIMEZONE; the zone the mail named is kept
    in ``X-MAILVOICE-TZ`` so :func:`read_ics` gives the event back as it was. People with an address become
    ATTENDEEs; names alone (a cal-address must be a URI) go in ``X-MAILVOICE-PERSON`` and the description.
    """
    stamp = stamp or dt.datetime.now(dt.UTC)
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Mailvoice//Inbox events//EN", "CALSCALE:GREGORIAN"]
    for event in events:
        lines += ["BEGIN:VEVENT", f"UID:{event_uid(event)}", f"DTSTAMP:{_stamp(stamp)}"]
        kind, value = _value(event["start"], event["all_day"])
        lines.append(f"DTSTART{kind}:{value}")
        if event.get("end"):
            kind, value = _value(event["end"], event["all_day"])
            lines.append(f"DTEND{kind}:{value}")
        lines.append(f"SUMMARY:{escape(event['title'])}")
        if event.get("place"):
            lines.append(f"LOCATION:{escape(event['place'])}")
        if event.get("timezone"):
            lines.append(f"X-MAILVOICE-TZ:{event['timezone']}")
        names = []
        for person in event.get("people", []):
            if re.fullmatch(r"[^@\s<>\"]+@[^@\s<>\"]+", person):
                lines.append(f"ATTENDEE:mailto:{person}")
            else:
                names.append(person)
                lines.append(f"X-MAILVOICE-PERSON:{escape(person)}")
        if names:
            lines.append(f"DESCRIPTION:{escape('With ' + ', '.join(names))}")
        lines.append("END:VEVENT")
    lines.append("END:VCALENDAR")
    return "".join(fold(line) + "\r\n" for line in lines)
