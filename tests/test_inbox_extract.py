"""Events and tasks from incoming mail: date rules, the .ics reader and writer, extraction with and without a
model, MailItems from stored rows, and the hand-labelled real messages."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from fakes import FakeBackend
from jsonschema import Draft202012Validator
from mailgen.events import planted_mail

from assistant.inbox.dates import find_dates
from assistant.inbox.extract import Extraction, MailItem, extract, mail_item_from_row
from assistant.inbox.ics import fold, read_ics, to_ics
from assistant.inbox.schema import grammar, schema, to_csv, to_json

REPO = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((REPO / "resources" / "schemas" / "inbox-items.schema.json").read_text(encoding="utf-8"))
VALIDATOR = Draft202012Validator(SCHEMA)
CET = dt.timezone(dt.timedelta(hours=1))
MONDAY = dt.datetime(2026, 3, 2, 9, 0, tzinfo=CET)  # Monday 2 March 2026, 09:00 +01:00
LABELS = Path(__file__).with_name("inbox_corpus_labels.json")


def valid(result: Extraction) -> bool:
    """Checked against the published file itself, not through the product's own loader."""
    return not list(VALIDATOR.iter_errors(result.items()))


# --- dates ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "day", "time"),
    [
        ("tomorrow at 3pm", "2026-03-03", "15:00"),
        ("next Tuesday 10:00", "2026-03-10", "10:00"),
        ("on Friday", "2026-03-06", None),
        ("this Monday", "2026-03-02", None),
        ("March 3rd at 2:30 pm", "2026-03-03", "14:30"),
        ("3/4", "2026-03-04", None),
        ("2026-03-04 14:00", "2026-03-04", "14:00"),
        ("Tue 3 Mar 14h30", "2026-03-03", "14:30"),
        ("morgen um 15 Uhr", "2026-03-03", "15:00"),
        ("am 3. März um 14.30 Uhr", "2026-03-03", "14:30"),
        ("mardi 10h", "2026-03-03", "10:00"),
        ("le 5 mars à 14h", "2026-03-05", "14:00"),
        ("el viernes a las 3", "2026-03-06", "15:00"),
        ("el 5 de marzo a las 10:00", "2026-03-05", "10:00"),
        ("el próximo jueves", "2026-03-12", None),
        ("January 5", "2027-01-05", None),
        ("by end of week", "2026-03-06", None),
    ],
)
def test_dates_resolve_against_the_sent_day(text: str, day: str, time: str | None) -> None:
    found, _ = find_dates(text, MONDAY, day_first=text.startswith(("am ", "le ", "el ", "mardi")))
    assert [(f.day.isoformat(), f.time and f.time.strftime("%H:%M")) for f in found] == [(day, time)]


@pytest.mark.parametrize("text", ["Guten Morgen Anna", "por la mañana", "about 3.5 million", "24/7 support"])
def test_words_that_are_not_dates(text: str) -> None:
    assert find_dates(text, MONDAY)[0] == []


def test_ranges_and_zones() -> None:
    (span,) = find_dates("Friday 2-3pm", MONDAY)[0]
    assert (span.time, span.end) == (dt.time(14), dt.time(15))
    (zoned,) = find_dates("Tuesday, March 10 at 10am PT", MONDAY)[0]
    assert zoned.zone == "America/Los_Angeles"
    assert zoned.day == dt.date(2026, 3, 10)


def test_day_first_in_german_french_spanish() -> None:
    assert find_dates("3/4", MONDAY, day_first=True)[0][0].day == dt.date(2026, 4, 3)
    assert find_dates("3.4.", MONDAY)[0][0].day == dt.date(2026, 4, 3)


def test_without_a_date_header_only_dates_with_a_year() -> None:
    found, problems = find_dates("tomorrow, or 2026-03-04", None)
    assert [f.day for f in found] == [dt.date(2026, 3, 4)]
    assert problems == ["'tomorrow': no Date header to resolve it against"]


# --- iCalendar --------------------------------------------------------------------------------------------

INVITE = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\nBEGIN:VTIMEZONE\r\nTZID:Custom Zone\r\nBEGIN:STANDARD\r\n"
    "DTSTART:16010101T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nRRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10\r\n"
    "END:STANDARD\r\nBEGIN:DAYLIGHT\r\nDTSTART:16010101T020000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\n"
    "RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\nBEGIN:VEVENT\r\n"
    "DTSTART;TZID=Custom Zone:20260415T100000\r\nDURATION:PT1H30M\r\nSUMMARY:Atlas review\\, round 2\r\n"
    'LOCATION:Room 4B\r\nORGANIZER;CN="Raman, Priya":mailto:priya@example.org\r\n'
    "ATTENDEE;CN=Alex Morgan;PARTSTAT=NEEDS-ACTION:mailto:alex@example.org\r\nEND:VEVENT\r\n"
    "BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20260501\r\nDTEND;VALUE=DATE:20260503\r\nSUMMARY:Offsite\r\nEND:VEVENT\r\n"
    "BEGIN:VEVENT\r\nDTSTART;TZID=W. Europe Standard Time:20260110T090000\r\nSUMMARY:Winter sync\r\nEND:VEVENT\r\n"
    "END:VCALENDAR\r\n"
)


def test_ics_timezones_all_day_and_people() -> None:
    result = read_ics(INVITE)
    review, offsite, winter = result.events
    assert review["start"] == "2026-04-15T10:00+02:00"  # the VTIMEZONE's summer offset
    assert review["end"] == "2026-04-15T11:30+02:00"
    assert review["title"] == "Atlas review, round 2"
    assert review["people"] == ["Raman, Priya", "Alex Morgan"]
    assert (offsite["all_day"], offsite["start"], offsite["end"]) == (True, "2026-05-01", "2026-05-03")
    assert (winter["start"], winter["timezone"]) == ("2026-01-10T09:00+01:00", "Europe/Berlin")
    assert result.problems == []


def test_ics_folds_are_unfolded_even_inside_a_character() -> None:
    raw = b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:20260310T140000Z\r\nSUMMARY:Caf"
    raw += "é".encode()[:1] + b"\r\n " + "é".encode()[1:] + b" meeting\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    assert read_ics(raw).events[0]["title"] == "Café meeting"


@pytest.mark.parametrize(
    "text",
    ["", "not a calendar at all", "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART:2026-99-99\nEND:VEVENT",
     "BEGIN:VEVENT\nSUMMARY:no start\nEND:VEVENT", "\x00\x01\x02", "BEGIN:VCALENDAR\nDTSTART;TZID=\"x:20260101"],
)  # fmt: skip
def test_broken_ics_reads_as_nothing_with_a_reason(text: str) -> None:
    result = read_ics(text)
    assert result.events == []
    assert result.problems


def test_cancelled_and_too_many_events() -> None:
    cancel = INVITE.replace("METHOD:REQUEST", "METHOD:CANCEL")
    assert read_ics(cancel).events == []
    many = "BEGIN:VCALENDAR\n" + "BEGIN:VEVENT\nDTSTART:20260310T140000Z\nSUMMARY:x\nEND:VEVENT\n" * 60
    result = read_ics(many + "END:VCALENDAR\n")
    assert len(result.events) == 50
    assert "more than 50 events: the rest left out" in result.problems


def test_to_ics_round_trip_crlf_folded_stable_uid() -> None:
    events = read_ics(INVITE).events
    events[0]["title"] = "A long title " * 8 + "ü"
    stamp = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    text = to_ics(events, stamp=stamp)
    assert text.endswith("\r\n")
    assert "\n" not in text.replace("\r\n", "")
    assert all(len(line.encode()) <= 75 for line in text.split("\r\n"))
    assert text == to_ics(events, stamp=stamp)
    assert read_ics(text).events == [{**e, "people": e["people"]} for e in events]
    assert re.findall(r"UID:(\S+)", text) == re.findall(r"UID:(\S+)", to_ics(events))


def test_fold_never_splits_a_character() -> None:
    for line in fold("SUMMARY:" + "é" * 100).split("\r\n"):
        assert len(line.encode()) <= 75
        line.encode().decode("utf-8")


# --- extraction without a model ---------------------------------------------------------------------------


def test_rules_find_events_tasks_and_places() -> None:
    body = ("Hi Alex,\n\nShall we have lunch on Friday at 12:30 at the Thai place on Main?\n\n"
            "Also, please send me the cost estimate by Thursday.\n\nBest,\nPriya")  # fmt: skip
    result = extract(MailItem(subject="Lunch Friday?", body=body, sent_at=MONDAY))
    assert valid(result)
    (event,) = result.events
    assert (event["start"], event["place"], event["timezone"]) == (
        "2026-03-06T12:30+01:00",
        "the Thai place on Main",
        "+01:00",
    )
    assert result.event_sources == ["rules"]
    assert [t["due"] for t in result.tasks] == ["2026-03-05"]
    json.dumps(result.to_json())


def test_invitation_is_ground_truth() -> None:
    item = MailItem(subject="Invitation: Atlas review", body="Atlas review on Thursday at 9am", sent_at=MONDAY,
                    calendars=(INVITE,))  # fmt: skip
    result = extract(item)
    assert result.event_sources == ["ics", "ics"]  # and no event from the text
    assert result.events[0]["place"] == "Room 4B"
    assert result.dropped == [{"kind": "event", "source": "ics", "reason": "before the mail was sent"}]


def test_bad_input_gives_clear_results() -> None:
    no_date = extract(MailItem(subject="Meeting", body="Meeting tomorrow at 3pm, or on 2026-03-04 at 10:00."))
    assert [e["start"] for e in no_date.events] == ["2026-03-04T10:00+00:00"]
    absurd = extract(MailItem(body="Meeting on March 3 1900 at 10am, and the call on 2999-03-03.", sent_at=MONDAY))
    assert absurd.events == []
    assert {d["reason"] for d in absurd.dropped} == {"start in the year 1900", "start in the year 2999"}
    days = [MONDAY.date() + dt.timedelta(days=i) for i in range(1, 51)]
    crowded = extract(MailItem(body="\n".join(f"Meeting on {d.isoformat()} at 10:00." for d in days), sent_at=MONDAY))
    assert len(crowded.events) == 20
    assert sum("more than 20" in d["reason"] for d in crowded.dropped) == 30
    broken = extract(
        MailItem(body="See you Friday for lunch", sent_at=MONDAY, calendars=("BEGIN:VCALENDAR\nBEGIN:VEV",))
    )
    assert [e["start"] for e in broken.events] == ["2026-03-06"]
    assert any(n.startswith("invitation:") for n in broken.notes)
    for result in (no_date, absurd, crowded, broken, extract(MailItem())):
        assert valid(result)


def test_past_events_are_left_out() -> None:
    result = extract(MailItem(body="Thanks for the meeting on February 3.", sent_at=MONDAY))
    assert result.events == []
    assert result.dropped[0]["reason"] == "before the mail was sent"


def test_every_generated_mail_validates_and_is_found() -> None:
    mails = planted_mail(seed=7, n=300)
    found = planted = 0
    for mail in mails:
        item = MailItem(subject=mail.subject, body=mail.body, sent_at=mail.sent_at, calendars=mail.calendars)
        result = extract(item)
        assert valid(result), mail.body
        json.dumps(result.to_json())
        starts = {e["start"][:10] for e in result.events}
        planted += len(mail.events)
        found += sum(e["date"] in starts for e in mail.events)
    assert found / planted > 0.95


def test_exports() -> None:
    events = read_ics(INVITE).events
    assert json.loads(to_json(events, []))["events"] == events
    lines = to_csv(events).splitlines()
    assert lines[0] == "title,start,end,all_day,timezone,place,people"
    assert lines[1].startswith('"Atlas review, round 2",2026-04-15T10:00+02:00')
    assert (
        to_csv([{"what": "Send it", "who": None, "due": "2026-03-05"}], "task").splitlines()[1] == "Send it,,2026-03-05"
    )


def test_schema_is_published_and_its_grammars_compile() -> None:
    from llama_cpp import LlamaGrammar

    Draft202012Validator.check_schema(SCHEMA)
    assert schema() == SCHEMA
    for kind in ("items", "fill"):
        LlamaGrammar.from_string(grammar(kind), verbose=False)


# --- with a model (fake) ----------------------------------------------------------------------------------


def test_invalid_model_json_is_dropped_and_counted() -> None:
    backend = FakeBackend(replies=['{"title": "Lunch", "place": "the moon", "people": ["Priya"]}', "not json {"])
    body = "Lunch on Friday at noon with Priya?\n\nAre we meeting at 3? When suits you?"
    result = extract(MailItem(subject="hi", body=body, sent_at=MONDAY, from_name="Priya Raman"), backend)
    assert result.model_calls == 2
    assert result.model_invalid == 1
    (event,) = result.events
    assert event["place"] is None  # "the moon" is not in the mail
    assert event["title"] == "Lunch"
    assert result.event_sources == ["rules+model"]
    assert {"kind": "place", "source": "model", "reason": "not in the mail"} in result.dropped
    assert backend.params[0].grammar == grammar("fill")
    assert valid(result)


def test_model_items_must_validate_and_use_the_mails_dates() -> None:
    reply = {"events": [{"title": "Sync", "start": "2026-03-06T15:00+01:00", "end": None, "all_day": False,
                         "timezone": "+01:00", "place": None, "people": []},
                        {"title": "Made up", "start": "2026-07-01", "end": None, "all_day": True, "timezone": None,
                         "place": None, "people": []},
                        {"title": "", "start": "2026-03-06", "end": None, "all_day": True, "timezone": None,
                         "place": None, "people": []}],
             "tasks": [{"what": "Bring slides", "who": "Alex", "due": "2026-02-30"}]}  # fmt: skip
    backend = FakeBackend(replies=[json.dumps(reply)])
    result = extract(MailItem(body="The invoice of Friday is attached. What time suits?", sent_at=MONDAY), backend)
    assert [e["title"] for e in result.events] == ["Sync"]
    assert result.event_sources == ["model"]
    reasons = [d["reason"] for d in result.dropped]
    assert "a date the mail does not say" in reasons
    assert any("should be non-empty" in r for r in reasons)
    assert valid(result)


def test_cancel_stops_before_the_model() -> None:
    backend = FakeBackend()
    result = extract(MailItem(body="Lunch on Friday?", sent_at=MONDAY), backend, cancel=lambda: True)
    assert result.cancelled
    assert backend.prompts == []
    assert [e["start"] for e in result.events] == ["2026-03-06"]


# --- from stored rows ------------------------------------------------------------------------------------


def test_mail_item_from_a_stored_row_reads_the_original(tmp_path: Path, db) -> None:
    from assistant.importer import import_paths

    mails = [m for m in planted_mail(seed=3, n=60) if m.calendars][:2] + planted_mail(seed=3, n=3)
    mbox = tmp_path / "in.mbox"
    mbox.write_bytes(b"".join(b"From someone@example.net Mon Jan  1 00:00:00 2024\n" + m.raw() + b"\n" for m in mails))
    import_paths(db, [mbox])
    rows = list(db.query("SELECT * FROM messages ORDER BY id"))
    assert len(rows) == len(mails)
    for row, mail in zip(rows, mails, strict=True):
        item = mail_item_from_row(row)
        assert item.sent_at == mail.sent_at
        assert item.sent_at.utcoffset() == mail.sent_at.utcoffset()
        assert len(item.calendars) == len(mail.calendars)
        assert [e["start"][:10] for e in extract(item).events] == [e["date"] for e in mail.events]
    mbox.unlink()
    gone = mail_item_from_row(rows[0])
    assert gone.calendars == ()
    assert gone.sent_at == mails[0].sent_at and gone.sent_at.utcoffset() == dt.timedelta(0)
    assert gone.notes == ("original message not readable: date in UTC, no invitation",)


# --- the real embedded model -----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(900)  # a few model calls a mail: minutes on a busy 2-core machine
def test_embedded_model_outputs_always_validate() -> None:
    from assistant.drafting.backend import EngineSettings, LlamaBackend
    from assistant.drafting.models import embedded_model_path

    path = embedded_model_path()
    if path is None:
        pytest.skip("the embedded model is not installed")
    backend = LlamaBackend(EngineSettings(model_path=str(path), n_ctx=2048))
    calls = 0
    for mail in [m for m in planted_mail(seed=11, n=12) if m.events and not m.calendars][:3]:
        item = MailItem(subject=mail.subject, body=mail.body + "\nWhen works for a call?", sent_at=mail.sent_at)
        result = extract(item, backend)
        calls += result.model_calls
        assert valid(result)
    assert calls > 0


# --- real mail, labelled by hand ---------------------------------------------------------------------------


def corpus_results(backend=None) -> dict | None:
    """Extraction over the labelled corpus messages (read as the importer reads them), scored like the bench."""
    from conftest import CORPORA

    from assistant.importer import build_record

    if not CORPORA.is_dir():
        return None
    labels = json.loads(LABELS.read_text(encoding="utf-8"))["messages"]
    counts = {f: {"tp": 0, "extracted": 0, "planted": 0} for f in ("date", "time", "place")}
    valid_count = 0
    for entry in labels:
        data = (CORPORA / entry["path"]).read_bytes()
        record = build_record(data, False, "corpus")
        record.update(source_file=str(CORPORA / entry["path"]), source_offset=0)
        result = extract(mail_item_from_row(record, lambda _f, _o, data=data: data), backend)
        valid_count += valid(result)
        events, wanted = result.events, entry["events"]
        counts["date"]["extracted"] += len(events)
        counts["date"]["planted"] += len(wanted)
        counts["time"]["extracted"] += sum(not e["all_day"] for e in events)
        counts["time"]["planted"] += sum(w["time"] is not None for w in wanted)
        counts["place"]["extracted"] += sum(e["place"] is not None for e in events)
        counts["place"]["planted"] += sum(w["place"] is not None for w in wanted)
        for want in wanted:
            same = [e for e in events if e["start"][:10] == want["date"]]
            counts["date"]["tp"] += bool(same)
            counts["time"]["tp"] += want["time"] is not None and any(e["start"][11:16] == want["time"] for e in same)
            counts["place"]["tp"] += want["place"] is not None and any(
                e["place"]
                and (want["place"].lower() in e["place"].lower() or e["place"].lower() in want["place"].lower())
                for e in same
            )
    return {"n": len(labels), "valid": valid_count / len(labels), "counts": counts}


@pytest.mark.corpora
def test_labelled_real_messages(corpora: Path) -> None:
    found = corpus_results()
    assert found["n"] == 30
    assert found["valid"] == 1.0
    dates = found["counts"]["date"]
    assert dates["tp"] / dates["planted"] >= 0.6  # recall on real mail; the figures are in QUALITY.md


def test_a_megabyte_log_is_read_only_to_its_first_part():
    from assistant.inbox.extract import MAX_TEXT_CHARS

    line = "May 29 12:30:57 ubuntu python: step {i} done at 12:{m:02d} on 2017-05-29\n"
    body = "".join(line.format(i=i, m=i % 60) for i in range(15_000))  # about 1 MB, thousands of dates and times
    found = extract(MailItem(subject="Install log", body=body))  # read whole, it took minutes
    assert any(f"first {MAX_TEXT_CHARS:,}" in note for note in found.notes)
