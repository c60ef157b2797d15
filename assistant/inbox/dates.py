"""Dates and times in mail text, resolved against the moment the mail was sent; deterministic, no model.

English, German, French and Spanish forms: "tomorrow at 3pm", "next Tuesday 10:00", "on Friday", "March 3rd at
2:30 pm", "3/4", "2026-03-04 14:00", "14h30", "morgen um 15 Uhr", "mardi 10h", "el viernes a las 3", ranges
("2-3pm", "von 10 bis 11 Uhr") and zones said after a time ("10am PT", "15:00 CET").

Conventions (the mail generator plants its answers with the same ones):
- A weekday alone ("on Friday", "Friday") is the first such day after the day the mail was sent; "this Friday" may
  be that very day; "next Friday" is the Friday of the following week (weeks start on Monday).
- A date without a year is the next one on or after 30 days before the mail (so "March 3" in a December mail is
  next March, in a mid-March mail this March).
- "3/4" is 3 April in German, French and Spanish text or when the first number is over 12, else March 4; "3.4."
  is always day.month.
- A bare hour ("at 3", "a las 3") from 1 to 7 is afternoon, 8 to 11 morning.
- Times are in the mail's own UTC offset (from its Date header) unless a zone is said; a mail without a Date
  header resolves only dates that carry a year.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from dateutil.relativedelta import relativedelta

_WEEKDAYS = {
    0: "monday|mon|montag|mo|lundi|lunes",
    1: "tuesday|tues|tue|dienstag|di|mardi|martes",
    2: "wednesday|wed|mittwoch|mi|mercredi|miércoles|miercoles",
    3: "thursday|thurs|thu|donnerstag|do|jeudi|jueves",
    4: "friday|fri|freitag|fr|vendredi|viernes",
    5: "saturday|sat|samstag|sonnabend|sa|samedi|sábado|sabado",
    6: "sunday|sun|sonntag|so|dimanche|domingo",
}
_SHORT = {"mon", "tue", "tues", "wed", "thu", "thurs", "fri", "sat", "sun", "mo", "di", "mi", "do", "fr", "sa", "so"}
_MONTHS = {
    1: "january|jan|januar|jänner|janvier|enero|ene",
    2: "february|feb|februar|février|fevrier|febrero",
    3: "march|mar|märz|maerz|mär|mars|marzo",
    4: "april|apr|avril|abril|abr",
    5: "may|mai|mayo",
    6: "june|jun|juni|juin|junio",
    7: "july|jul|juli|juillet|julio",
    8: "august|aug|août|aout|agosto|ago",
    9: "september|sept|sep|septembre|septiembre|setiembre",
    10: "october|oct|oktober|okt|octobre|octubre",
    11: "november|nov|novembre|noviembre",
    12: "december|dec|dezember|dez|décembre|decembre|diciembre|dic",
}
WEEKDAY_OF = {name: day for day, names in _WEEKDAYS.items() for name in names.split("|")}
MONTH_OF = {name: month for month, names in _MONTHS.items() for name in names.split("|")}
_WD_LONG = "|".join(sorted((n for n in WEEKDAY_OF if n not in _SHORT), key=len, reverse=True))
_WD_ANY = "|".join(sorted(WEEKDAY_OF, key=len, reverse=True))
_MON = "|".join(sorted(MONTH_OF, key=len, reverse=True))
DATE_WORD = re.compile(r"\b(?:(?:" + _WD_LONG + "|" + _MON + r"|tomorrow|today)\b|\d)", re.I)

# Zones said after a time; the IANA zone each stands for (daylight and standard names alike).
ZONE_WORDS = {
    "utc": "UTC", "gmt": "UTC", "z": "UTC", "cet": "Europe/Berlin", "cest": "Europe/Berlin", "mez": "Europe/Berlin",
    "mesz": "Europe/Berlin", "bst": "Europe/London", "et": "America/New_York", "est": "America/New_York",
    "edt": "America/New_York", "ct": "America/Chicago", "cst": "America/Chicago", "cdt": "America/Chicago",
    "mt": "America/Denver", "mst": "America/Denver", "mdt": "America/Denver", "pt": "America/Los_Angeles",
    "pst": "America/Los_Angeles", "pdt": "America/Los_Angeles", "jst": "Asia/Tokyo",
}  # fmt: skip
_ZONE = r"(?:\s*\(?(?P<zone>" + "|".join(sorted(ZONE_WORDS, key=len, reverse=True)) + r")\b\)?)?"

_AMPM = r"\s*(?P<ampm>[ap]\.?\s?m\b\.?)"
_HM = r"(?P<h{}>[01]?\d|2[0-3])"
_TIME = re.compile(
    r"(?<![\d/.:])(?:"
    + r"(?P<named>\b(?:noon|midday|midnight|midi|mittags?)\b)"
    + r"|" + _HM.format(1) + r"\s*h\s*(?P<fm>[0-5]\d)?(?![a-z])"  # 14h30, 10h, 14 h 30
    + r"|" + _HM.format(2) + r"(?:[:.](?P<um>[0-5]\d))?\s*uhr(?:\s+(?P<um2>[0-5]\d)\b)?"  # 15 Uhr, 15.30 Uhr, 15 Uhr 30
    + r"|" + _HM.format(3) + r"(?:[:.](?P<am_m>[0-5]\d))?" + _AMPM  # 3pm, 2:30 p.m.
    + r"|" + _HM.format(4) + r":(?P<cm>[0-5]\d)(?!\d)"  # 14:00, 9:30
    + r"|(?P<prefix>\b(?:at|um|à|a\s+las|a\s+la)\s+)(?P<bh>[01]?\d|2[0-3])(?:\s*o'?clock)?"
    + r"(?!\d|[:.,/]\d|\s*(?:[ap]\.?\s?m\b|h\b|h\d|uhr\b|%|percent|hours|minutes|people|of\b))"
    + r"(?:\s+de\s+la\s+(?P<part>mañana|manana|tarde|noche))?"
    + r")" + _ZONE,
    re.I,
)  # fmt: skip
_RANGE_JOIN = re.compile(r"^\s*(?:-|–|—|to|till|until|bis|à|a|au|hasta)\s*$", re.I)
_UNTIL_BARE = re.compile(r"^\s*(?:-|–|—)\s*$")

_YEAR = r"(?P<y>\d{4}|'\d\d)"
_DATE = re.compile(
    r"(?P<iso>\b(?P<iy>\d{4})-(?P<im>\d{1,2})-(?P<id>\d{1,2})\b)"
    + r"|(?P<num>(?<![\d.:/-])(?P<a>\d{1,2})(?P<sep>[./])(?P<b>\d{1,2})"
    + r"(?:(?P=sep)(?P<ny>\d{4}|\d{2})\b|(?P<dot>\.)(?!\d))?(?![\d/:]))"
    + r"|(?P<md>\b(?P<m1>" + _MON + r")\.?\s+(?P<d1>\d{1,2})(?:st|nd|rd|th)?\b(?:,?\s+" + _YEAR + r")?)"
    + r"|(?P<dm>\b(?P<d2>\d{1,2}|1er)(?:st|nd|rd|th|\.)?\s*(?:of\s+|de\s+)?(?P<m2>" + _MON + r")\b\.?"
    + r"(?:,?\s+(?:de\s+)?(?P<y2>\d{4})\b)?)"
    + r"|(?P<rel>\b(?:the\s+day\s+after\s+tomorrow|day\s+after\s+tomorrow|tomorrow|tmrw|today|tonight"
    + r"|this\s+(?:morning|afternoon|evening)"
    + r"|übermorgen|uebermorgen|heute|morgen|après-demain|apres-demain|aujourd'hui|aujourd’hui|demain|ce\s+soir"
    + r"|pasado\s+mañana|pasado\s+manana|hoy|mañana|manana|esta\s+tarde|esta\s+noche"
    + r"|(?:by\s+)?(?:the\s+)?end\s+of\s+(?:the\s+)?(?:day|week|month)|eod|eow)\b)"
    + r"|(?P<wd>\b(?P<qual>next|this|coming|last|nächsten|nächste|naechsten|kommenden|diesen"
    + r"|ce|el\s+próximo|el\s+proximo|próximo|proximo|este|el|am)?\s*"
    + r"(?P<wdn>" + _WD_LONG + r")\b(?P<post>\s+(?:prochain|que\s+viene|próximo|proximo))?)"
    + r"|(?P<ord>\bon\s+the\s+(?P<od>\d{1,2})(?:st|nd|rd|th)\b)",
    re.I,
)  # fmt: skip
# "Morgen" also means morning ("Guten Morgen", "am Morgen"); "mañana" also ("por la mañana").
_NOT_TOMORROW = re.compile(r"(?:guten|am|jeden|diesen|heute|la|las|esta|cada)\s+$", re.I)
_LEADING_WD = re.compile(r"(?:\b(?P<wdn>" + _WD_ANY + r")\b\.?,?\s*(?:the\s+|le\s+|el\s+|den\s+)?)$", re.I)


@dataclass(frozen=True, slots=True)
class Found:
    """One date or time said in the text, resolved."""

    day: dt.date | None
    time: dt.time | None
    end: dt.time | None
    zone: str | None  # an IANA zone said with the time, else None (the mail's own offset)
    start: int
    stop: int
    text: str
    sure: bool  # False for a bare hour or an ambiguous number date


@dataclass(frozen=True, slots=True)
class _Time:
    time: dt.time
    end: dt.time | None
    zone: str | None
    start: int
    stop: int
    sure: bool


def _hour(h: int, ampm: str | None, bare: bool) -> int | None:
    if ampm:
        if not 1 <= h <= 12:
            return None
        pm = ampm.lower().startswith("p")
        return (h % 12) + (12 if pm else 0)
    if bare and 1 <= h <= 7:
        return h + 12
    return h


def _time_of(m: re.Match) -> tuple[dt.time, bool] | None:
    g = m.groupdict()
    if g["named"]:
        return (dt.time(0) if g["named"].lower() == "midnight" else dt.time(12)), True
    part = (g["part"] or "").lower()
    bare = g["bh"] is not None
    h = int(next(g[k] for k in ("h1", "h2", "h3", "h4", "bh") if g[k] is not None))
    minute = int(g["fm"] or g["um"] or g["um2"] or g["am_m"] or g["cm"] or 0)
    hour = _hour(h, g["ampm"], bare and not part)
    if part in ("tarde", "noche") and hour is not None and hour < 12:
        hour += 12
    if hour is None or hour > 23:
        return None
    return dt.time(hour, minute), not bare or bool(part)


def find_times(text: str) -> list[_Time]:
    """Times of day in ``text``, a range joined into one ("2-3pm", "von 10 bis 11 Uhr")."""
    hits = []
    for m in _TIME.finditer(text):
        got = _time_of(m)
        if got is not None:
            zone = ZONE_WORDS.get((m.group("zone") or "").lower())
            if (
                m.group("zone")
                and m.group("zone").lower() in ("z", "et", "mt", "ct", "pt")
                and not m.group("zone").isupper()
            ):
                zone = None  # "at 3 et" is French, "mt" a word: short zones count only in capitals
            hits.append(_Time(got[0], None, zone, m.start(), m.end(), got[1]))
    out: list[_Time] = []
    for hit in hits:
        prev = out[-1] if out else None
        between = text[prev.stop : hit.start] if prev else ""
        if prev and prev.end is None and _RANGE_JOIN.match(between):
            start = prev.time
            out[-1] = _Time(start, hit.time, prev.zone or hit.zone, prev.start, hit.stop, prev.sure or hit.sure)
        else:
            out.append(hit)
    return [_range_from_number(text, t) for t in out]


_LEAD = re.compile(
    r"(?:^|[\s(])(?P<h>[01]?\d|2[0-3])(?:[:.](?P<m>[0-5]\d))?\s*(?:-|–|—|to|bis|à|a|until|till)\s*$", re.I
)


def _range_from_number(text: str, t: _Time) -> _Time:
    """ "2-3pm", "von 10 bis 11 Uhr": a bare number before a range word and a time starts the range."""
    if t.end is not None:
        return t
    window = text[max(0, t.start - 14) : t.start]
    lead = _LEAD.search(window)
    if lead is None:
        return t
    hour, minute = int(lead.group("h")), int(lead.group("m") or 0)
    if t.time.hour >= 12 and hour < 12 and hour + 12 <= t.time.hour:
        hour += 12  # the pm of the end holds for the start
    if (hour, minute) >= (t.time.hour, t.time.minute):
        return t
    begin = t.start - len(window) + lead.start("h")
    return _Time(dt.time(hour, minute), t.time, t.zone, begin, t.stop, t.sure)


def _year(text: str | None, ref: dt.date | None) -> int | None:
    if text is None:
        return None
    if text.startswith("'"):
        return 2000 + int(text[1:])
    year = int(text)
    return year + 2000 if year < 100 else year


def _next_yearly(month: int, day: int, ref: dt.date) -> dt.date | None:
    for year in (ref.year - 1, ref.year, ref.year + 1):
        try:
            when = dt.date(year, month, day)
        except ValueError:
            continue
        if when >= ref - dt.timedelta(days=30):
            return when
    return None


def _weekday(qual: str, post: str, target: int, ref: dt.date) -> dt.date:
    qual = " ".join(qual.lower().split())
    ahead = (target - ref.weekday()) % 7
    if (
        qual in ("next", "nächsten", "nächste", "naechsten", "el próximo", "el proximo", "próximo", "proximo")
        or post.strip()
    ):
        monday = ref - dt.timedelta(days=ref.weekday()) + dt.timedelta(days=7)
        return monday + dt.timedelta(days=target)
    if qual == "last":
        return ref - dt.timedelta(days=(ref.weekday() - target) % 7 or 7)
    if qual in ("this", "diesen", "ce", "este") and ahead == 0:
        return ref
    return ref + dt.timedelta(days=ahead or 7)


def _relative(word: str, ref: dt.date) -> dt.date | None:
    word = " ".join(word.lower().replace("’", "'").split()).removeprefix("by ").removeprefix("the ")
    if "after" in word or word in ("übermorgen", "uebermorgen", "après-demain", "apres-demain") or "pasado" in word:
        return ref + dt.timedelta(days=2)
    if word in ("tomorrow", "tmrw", "morgen", "demain", "mañana", "manana"):
        return ref + dt.timedelta(days=1)
    if word.endswith("week") or word == "eow":
        return ref + dt.timedelta(days=(4 - ref.weekday()) % 7)
    if word.endswith("month"):
        return ref + relativedelta(day=31)
    return ref  # today, tonight, this afternoon, heute, hoy, end of day...


def _number_date(m: re.Match, ref: dt.date | None, day_first: bool) -> tuple[dt.date | None, bool] | None:
    a, b = int(m.group("a")), int(m.group("b"))
    dotted = m.group("sep") == "."
    if (dotted and not (m.group("ny") or m.group("dot"))) or (a, b) == (24, 7):
        return None  # "3.5" is a number, "3.5." or "3.5.2026" a date; "24/7" is always
    if dotted or day_first or a > 12:
        day, month = a, b
    else:
        month, day = a, b
    sure = dotted or a > 12 or b > 12 or a == b or day_first
    year = _year(m.group("ny"), ref)
    try:
        if year is not None:
            return dt.date(year, month, day), sure
        return (_next_yearly(month, day, ref) if ref else None), sure
    except ValueError:
        return None


def _date_of(m: re.Match, text: str, ref: dt.date | None, day_first: bool) -> tuple[dt.date | None, bool] | None:
    """The date a match names; None when the match is not a date after all."""
    g = m.groupdict()
    try:
        if g["iso"]:
            return dt.date(int(g["iy"]), int(g["im"]), int(g["id"])), True
        if g["num"]:
            return _number_date(m, ref, day_first)
        if g["md"] or g["dm"]:
            month = MONTH_OF[(g["m1"] or g["m2"]).lower()]
            day = 1 if (g["d2"] or "").lower() == "1er" else int(g["d1"] or g["d2"])
            year = _year(g["y"] or g["y2"], ref)
            if year is not None:
                return dt.date(year, month, day), True
            return (_next_yearly(month, day, ref) if ref else None), True
    except ValueError:
        return None
    if ref is None:
        return None, True
    if g["rel"]:
        word = g["rel"].lower()
        if word in ("morgen", "mañana", "manana") and _NOT_TOMORROW.search(text[max(0, m.start() - 12) : m.start()]):
            return None
        return _relative(word, ref), True
    if g["wd"]:
        target = WEEKDAY_OF[g["wdn"].lower()]
        return _weekday(g["qual"] or "", g["post"] or "", target, ref), True
    if g["ord"]:
        day = int(g["od"])
        for months in (0, 1):
            try:
                when = (ref + relativedelta(months=months)).replace(day=day)
            except ValueError:
                continue
            if when >= ref:
                return when, True
    return None


# Without a digit, only these words can start a date or a time (_DATE's relative days and weekdays, _TIME's
# named times): a sentence with none of them is skipped before the two long patterns run (most sentences).
_MAYBE = re.compile(
    r"\d|\b(?:" + _WD_LONG + r"|tomorrow|tmrw|today|tonight|this\s+(?:morning|afternoon|evening)|übermorgen"
    r"|uebermorgen|heute|morgen|après-demain|apres-demain|aujourd|demain|ce\s+soir|pasado|hoy|mañana|manana"
    r"|esta\s+(?:tarde|noche)|end\s+of|eod|eow|noon|midday|midnight|midi|mittag)",
    re.I,
)


def find_dates(text: str, sent_at: dt.datetime | None, *, day_first: bool = False) -> tuple[list[Found], list[str]]:
    """Every date and time said in ``text``, resolved against ``sent_at``; and what could not be resolved.

    A time is joined to the date said next to it (in either order, a few words apart); a time with no date
    near it keeps ``day=None`` for the caller to place.
    """
    if not _MAYBE.search(text):
        return [], []
    ref = sent_at.date() if sent_at is not None else None
    times = find_times(text)
    taken = [(t.start, t.stop) for t in times]
    dates: list[tuple[int, int, dt.date, bool]] = []
    problems: list[str] = []
    for m in _DATE.finditer(text):
        if any(s < m.end() and m.start() < e for s, e in taken):
            continue
        got = _date_of(m, text, ref, day_first)
        if got is None:
            continue
        day, sure = got
        start = m.start()
        lead = _LEADING_WD.search(text[max(0, start - 16) : start])
        if lead is not None and (m.group("md") or m.group("dm") or m.group("num") or m.group("iso")):
            start -= len(lead.group(0))  # "Tue 3 Mar", "Monday, March 3": one date, the weekday part of it
            while dates and dates[-1][1] > start:
                dates.pop()
        if day is None:
            problems.append(f"{m.group(0).strip()!r}: no Date header to resolve it against")
            continue
        dates.append((start, m.end(), day, sure))
    return _join(text, dates, times), problems


_APART = re.compile(r"[.;!?\n]\s|\b(?:and|or|und|oder|et|ou|y|o)\b", re.I)


def _join(text: str, dates: list[tuple[int, int, dt.date, bool]], times: list[_Time]) -> list[Found]:
    """Pair each date with the nearest time beside it (at most a few connecting words apart)."""
    used: set[int] = set()
    out: list[Found] = []
    for start, stop, day, sure in dates:
        best = None
        for i, t in enumerate(times):
            if i in used:
                continue
            gap = text[stop : t.start] if t.start >= stop else text[t.stop : start]
            near = len(gap) <= 24 and not _APART.search(gap)
            if near and (best is None or len(gap) < best[1]):
                best = (i, len(gap))
        if best is not None:
            t = times[best[0]]
            used.add(best[0])
            lo, hi = min(start, t.start), max(stop, t.stop)
            out.append(Found(day, t.time, t.end, t.zone, lo, hi, text[lo:hi], sure and t.sure))
        else:
            out.append(Found(day, None, None, None, start, stop, text[start:stop], sure))
    for i, t in enumerate(times):
        if i not in used:
            out.append(Found(None, t.time, t.end, t.zone, t.start, t.stop, text[t.start : t.stop], False))
    return sorted(out, key=lambda f: f.start)
