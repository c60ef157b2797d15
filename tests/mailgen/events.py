"""Mail with planted meetings, deadlines and tasks, and the answers: ground truth for inbox extraction.

Each :class:`PlantedMail` is written to Alex Morgan by someone of the generated world, in English, German, French
or Spanish, with its dates in varied forms (relative words, weekdays, "next" weekdays, month names, numbers,
ISO), times in each language's habits, sometimes a place, sometimes an invitation (.ics with a TZID), and some
mail with no event at all or a date that is no event. The answers follow the conventions documented in
``assistant/inbox/dates.py``. Deterministic for a seed; stdlib only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from dataclasses import dataclass, field

from mailgen.world import _PEOPLE, ME, ME_NAME

_WD = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "de": ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"),
    "fr": ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"),
    "es": ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"),
}
_MONTHS = {
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"),
    "de": ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
           "November", "Dezember"),
    "fr": ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
           "novembre", "décembre"),
    "es": ("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre",
           "noviembre", "diciembre"),
}  # fmt: skip
_PLACES = {
    "en": (("in Room 4B", "Room 4B"), ("at the Thai place on Main", "the Thai place on Main"),
           ("at Café Luna", "Café Luna"), ("on Zoom", "Zoom"), ("at the Lisbon office", "the Lisbon office"),
           ("in conference room Everest", "conference room Everest")),
    "de": (("im Raum 3", "Raum 3"), ("im Café Luna", "Café Luna"), ("in der Kantine", "Kantine"),
           ("über Zoom", "Zoom")),
    "fr": (("au Café de Flore", "Café de Flore"), ("en salle B12", "salle B12"), ("dans la salle B12", "salle B12"),
           ("sur Zoom", "Zoom")),
    "es": (("en el Bar Pepe", "el Bar Pepe"), ("en la sala 2", "sala 2"), ("por Zoom", "Zoom")),
}  # fmt: skip
_EVENTS = {
    "en": ("Can we meet {when}{place} to go over the launch plan?", "Let's have lunch {when}{place}.",
           "Quick reminder: the Atlas review is {when}{place}.", "Are you free for a call {when}{place}?",
           "The design workshop is set for {when}{place}.", "Dinner {when}{place}? My treat."),
    "de": ("Können wir uns {when}{place} treffen?", "Die Besprechung ist {when}{place}.",
           "Mittagessen {when}{place}?"),
    "fr": ("On peut faire la réunion {when}{place} ?", "Déjeuner {when}{place} ?",
           "Le rendez-vous est fixé {when}{place}."),
    "es": ("¿Quedamos {when}{place} para la reunión?", "La reunión es {when}{place}.", "¿Cena {when}{place}?"),
}  # fmt: skip
_TASKS = {
    "en": ("Please send me the cost estimate by {when}.", "Could you review section 3 before {when}?"),
    "de": ("Bitte schick mir den Bericht bis {when}.",),
    "fr": ("Merci de m'envoyer le rapport avant {when}.",),
    "es": ("Por favor, envíame el informe antes del {when}.",),
}
_PLAIN = {
    "en": ("Thanks for the notes, they look good to me.", "I was out last week, catching up on mail now.",
           "The invoice from {date} is attached.", "Great to hear from you, hope all is well."),
    "de": ("Danke für die Notizen, sieht gut aus.",),
    "fr": ("Merci pour les notes, tout me va.",),
    "es": ("Gracias por las notas, todo bien.",),
}  # fmt: skip
_HELLO = {"en": "Hi Alex,", "de": "Hallo Alex,", "fr": "Bonjour Alex,", "es": "Hola Alex,"}
_BYE = {"en": "Best,", "de": "Viele Grüße,", "fr": "Bien à vous,", "es": "Saludos,"}
_SUBJECTS = {"en": "Quick question", "de": "Kurze Frage", "fr": "Petite question", "es": "Una pregunta"}


@dataclass
class PlantedMail:
    """One generated mail and the events and tasks it holds (dates as YYYY-MM-DD, times HH:MM in the mail's
    offset, or in the invitation's zone)."""

    subject: str
    body: str
    sent_at: dt.datetime
    from_name: str
    lang: str
    calendars: tuple[str, ...] = ()
    events: list[dict] = field(default_factory=list)  # {"date", "time", "place"}
    tasks: list[dict] = field(default_factory=list)  # {"due"}

    def raw(self) -> bytes:
        """The mail as RFC 5322 bytes (multipart with a text/calendar part when it has an invitation)."""
        sender = next((p for p in _PEOPLE.values() if p.name == self.from_name), None)
        addr = sender.addr if sender else "someone@example.net"
        date = self.sent_at.strftime("%a, %d %b %Y %H:%M:%S %z")
        ident = hashlib.sha1(f"{self.subject}|{date}|{self.body}".encode()).hexdigest()[:16]
        head = (f"From: {self.from_name} <{addr}>\nTo: {ME}\nSubject: {self.subject}\nDate: {date}\n"
                f"Message-ID: <{ident}@events.example>\nMIME-Version: 1.0\n")  # fmt: skip
        if not self.calendars:
            return (
                head + "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n" + self.body
            ).encode()
        parts = [f"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n{self.body}"]
        parts += [f"Content-Type: text/calendar; charset=utf-8; method=REQUEST\n\n{c}" for c in self.calendars]
        body = "".join(f"--b1\n{p}\n" for p in parts) + "--b1--\n"
        return (head + 'Content-Type: multipart/alternative; boundary="b1"\n\n' + body).encode()


def _when(rng: random.Random, lang: str, sent: dt.date) -> tuple[str, dt.date]:
    """A date said in ``lang``, and the date it means."""
    form = rng.choice(("tomorrow", "weekday", "next", "month", "month", "number", "iso"))
    wd, mon = _WD[lang], _MONTHS[lang]
    if form == "tomorrow":
        return {"en": "tomorrow", "de": "morgen", "fr": "demain", "es": "mañana"}[lang], sent + dt.timedelta(days=1)
    if form in ("weekday", "next"):
        target = rng.randrange(5)
        if form == "weekday":
            day = sent + dt.timedelta(days=(target - sent.weekday()) % 7 or 7)
            return {"en": f"on {wd[target]}", "de": f"am {wd[target]}", "fr": wd[target], "es": f"el {wd[target]}"}[
                lang
            ], day
        day = sent - dt.timedelta(days=sent.weekday()) + dt.timedelta(days=7 + target)
        said = {"en": f"next {wd[target]}", "de": f"nächsten {wd[target]}", "fr": f"{wd[target]} prochain",
                "es": f"el próximo {wd[target]}"}[lang]  # fmt: skip
        return said, day
    day = sent + dt.timedelta(days=rng.randrange(2, 60))
    if form == "iso":
        return day.isoformat(), day
    if form == "number":
        if lang == "en":
            return f"{day.month}/{day.day}", day
        return (f"{day.day}.{day.month}." if lang == "de" else f"{day.day:02d}/{day.month:02d}"), day
    m = mon[day.month - 1]
    if lang == "en":
        return rng.choice(
            (f"{m} {day.day}", f"{day.day} {m}", f"{m[:3]} {day.day}", f"{m} {day.day}{_th(day.day)}")
        ), day
    return {"de": f"am {day.day}. {m}", "fr": f"le {day.day} {m}", "es": f"el {day.day} de {m}"}[lang], day


def _th(n: int) -> str:
    return "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def _time(rng: random.Random, lang: str) -> tuple[str, str | None]:
    if rng.random() < 0.25:
        return "", None
    hour, minute = rng.choice(((9, 0), (10, 0), (10, 30), (12, 0), (14, 0), (14, 30), (15, 0), (16, 15)))
    hm = f"{hour:02d}:{minute:02d}"
    if lang == "en":
        h12 = f"{hour % 12 or 12}" + (f":{minute:02d}" if minute else "")
        return rng.choice((f" at {h12}{'pm' if hour >= 12 else 'am'}", f" at {hour}:{minute:02d}")), hm
    if lang == "de":
        return (f" um {hour} Uhr" if not minute else f" um {hour}:{minute:02d}"), hm
    if lang == "fr":
        return f" à {hour}h{minute:02d}" if minute else f" à {hour}h", hm
    return f" a las {hour}:{minute:02d}", hm


def _ics(rng: random.Random, sent: dt.datetime, organiser: str) -> tuple[str, dict, str]:
    day = sent.date() + dt.timedelta(days=rng.randrange(1, 30))
    zone, hour = rng.choice((("Europe/Berlin", 10), ("America/New_York", 15), ("W. Europe Standard Time", 9)))
    title = rng.choice(("Atlas sync", "Quarterly planning", "Design review"))
    ics = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Example//EN\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\n"
        f"UID:{rng.getrandbits(48):x}@example.org\r\nDTSTAMP:20250101T000000Z\r\n"
        f"DTSTART;TZID={zone}:{day:%Y%m%d}T{hour:02d}0000\r\nDTEND;TZID={zone}:{day:%Y%m%d}T{hour + 1:02d}0000\r\n"
        f"SUMMARY:{title}\r\nLOCATION:Room 4B\r\nORGANIZER;CN={organiser}:mailto:someone@example.org\r\n"
        f"ATTENDEE;CN={ME_NAME};PARTSTAT=NEEDS-ACTION:mailto:alex.morgan@example.org\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    return ics, {"date": day.isoformat(), "time": f"{hour:02d}:00", "place": "Room 4B"}, title


def planted_mail(seed: int = 0, n: int = 1000) -> list[PlantedMail]:
    """``n`` mails with their answers; the same for the same seed."""
    rng = random.Random(seed)
    people = list(_PEOPLE.values())
    out = []
    for _ in range(n):
        lang = rng.choices(("en", "de", "fr", "es"), (55, 15, 15, 15))[0]
        person = rng.choice(people)
        offset = dt.timezone(dt.timedelta(minutes=rng.choice((-300, -240, 0, 60, 120, 330))))
        sent = dt.datetime(2025, 1, 6, tzinfo=offset) + dt.timedelta(
            days=rng.randrange(600), hours=rng.randrange(8, 19)
        )
        mail = PlantedMail(_SUBJECTS[lang], "", sent, person.name, lang)
        lines = []
        kind = rng.choices(("event", "task", "both", "plain", "ics"), (50, 15, 10, 17, 8))[0]
        if kind in ("event", "both"):
            said, day = _when(rng, lang, sent.date())
            said_time, hm = _time(rng, lang)
            place_said, place = rng.choice(_PLACES[lang]) if rng.random() < 0.6 else ("", None)
            lines.append(
                rng.choice(_EVENTS[lang]).format(when=said + said_time, place=" " + place_said if place_said else "")
            )
            mail.events.append({"date": day.isoformat(), "time": hm, "place": place})
        if kind in ("task", "both"):
            said, day = _when(rng, lang, sent.date())
            said = said.removeprefix("am ").removeprefix("on ").removeprefix("le ").removeprefix("el ")
            lines.append(rng.choice(_TASKS[lang]).format(when=said))
            mail.tasks.append({"due": day.isoformat()})
        if kind == "plain":
            past = sent.date() - dt.timedelta(days=rng.randrange(3, 40))
            lines.append(rng.choice(_PLAIN[lang]).format(date=f"{_MONTHS['en'][past.month - 1]} {past.day}"))
        if kind == "ics":
            ics, expected, title = _ics(rng, sent, person.name)
            mail.calendars = (ics,)
            mail.subject = f"Invitation: {title}"
            lines.append(f"{person.first} has invited you to {title}.")
            mail.events.append(expected)
        mail.body = f"{_HELLO[lang]}\n\n" + "\n\n".join(lines) + f"\n\n{_BYE[lang]}\n{person.first}\n"
        out.append(mail)
    return out
