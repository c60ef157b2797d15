"""The published schema of events and tasks (``resources/schemas/inbox-items.schema.json``): loading it, checking
items against it and a little more, the llama.cpp grammars made from it, and JSON/CSV exports."""

from __future__ import annotations

import copy
import csv
import datetime as dt
import functools
import importlib.resources
import io
import json
from typing import Any

SCHEMA_FILE = "inbox-items.schema.json"
EARLIEST_YEAR, LATEST_YEAR = 1990, 2100  # outside these a date is a typo or a placeholder (1900, 2999)


@functools.cache
def schema() -> dict[str, Any]:
    text = (importlib.resources.files("resources") / "schemas" / SCHEMA_FILE).read_text(encoding="utf-8")
    return json.loads(text)


@functools.cache
def _validators() -> dict[str, Any]:
    from jsonschema import Draft202012Validator

    whole = schema()
    out = {"items": Draft202012Validator(whole)}
    for name in ("event", "task"):
        part = {"$schema": whole["$schema"], "$defs": whole["$defs"], "$ref": f"#/$defs/{name}"}
        out[name] = Draft202012Validator(part)
    return out


def parse_when(text: str) -> dt.date | dt.datetime:
    """A schema date or date-time as Python (raises ValueError for 30 February and the like)."""
    if "T" in text:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return dt.date.fromisoformat(text)


def _dates(item: Any, kind: str) -> list[tuple[str, str]]:
    fields = {"event": ("start", "end"), "task": ("due",)}.get(kind, ())
    if not isinstance(item, dict):
        return []
    return [(k, item[k]) for k in fields if isinstance(item.get(k), str) and item[k][:4].isdigit()]


def problems(item: Any, kind: str, *, sent_at: dt.datetime | None = None) -> list[str]:
    """Why ``item`` (an ``event`` or ``task`` dict, or ``items``: the whole object) is not valid; [] when it is.

    Past the schema: dates exist, an event ends after it starts and matches its ``all_day``, the time zone is
    known, and years are plausible (within 1990-2100, and no more than a year before or five after the mail).
    """
    years = [
        f"{k} in the year {v[:4]}" for k, v in _dates(item, kind) if not EARLIEST_YEAR <= int(v[:4]) <= LATEST_YEAR
    ]
    if years:
        return years  # said first and plainly: the schema's pattern would only say "does not match"
    errors = [e.message for e in _validators()[kind].iter_errors(item)]
    if errors or kind == "items":
        if not errors and kind == "items":
            for key, sub in (("events", "event"), ("tasks", "task")):
                for one in item[key]:
                    errors += problems(one, sub, sent_at=sent_at)
        return errors
    fields = ("start", "end") if kind == "event" else ("due",)
    whens = {}
    for name in fields:
        if item.get(name) is None:
            continue
        try:
            whens[name] = when = parse_when(item[name])
        except ValueError:
            errors.append(f"{name} {item[name]!r} is no date")
            continue
        if not EARLIEST_YEAR <= when.year <= LATEST_YEAR:
            errors.append(f"{name} in the year {when.year}")
        elif sent_at is not None and not sent_at.year - 1 <= when.year <= sent_at.year + 5:
            errors.append(f"{name} in {when.year}, far from the mail's {sent_at.year}")
    if kind == "event" and "start" in whens:
        start, end = whens["start"], whens.get("end")
        if item["all_day"] == isinstance(start, dt.datetime):
            errors.append("all_day does not match the start")
        elif end is not None and (isinstance(end, dt.datetime) != isinstance(start, dt.datetime) or end < start):
            errors.append("end before start, or of another kind")
        if item["timezone"] and item["timezone"][0] not in "+-" and item["timezone"] != "UTC":
            from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

            try:
                ZoneInfo(item["timezone"])
            except (ZoneInfoNotFoundError, ValueError):
                errors.append(f"unknown time zone {item['timezone']!r}")
    return errors


def _part(name: str, keep: tuple[str, ...]) -> dict[str, Any]:
    """A sub-schema of ``$defs/name`` with only ``keep``'s properties, its strings and lists shortened for a small
    model (which otherwise runs on to the length limit): whatever it allows, the whole schema allows."""
    whole = schema()
    one = copy.deepcopy(whole["$defs"][name])
    one["properties"] = {k: v for k, v in one["properties"].items() if k in keep}
    one["required"] = [k for k in one["required"] if k in keep]
    props = one["properties"]
    props["title"]["maxLength"] = 60
    props["place"]["anyOf"][0]["maxLength"] = 60
    props["people"].update(maxItems=4, items={**props["people"]["items"], "maxLength": 40})
    return {"$defs": whole["$defs"], **one}


@functools.cache
def grammar(kind: str) -> str:
    """A GBNF grammar (llama.cpp) from the schema: ``items`` (the whole object, at most 5 of each, for a small
    model to fill in one go) or ``fill`` (an event's title, place and people, for a date rules found)."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    if kind == "fill":
        part = _part("event", ("title", "place", "people"))
    else:
        part = copy.deepcopy(schema())
        part["properties"]["events"]["maxItems"] = 5
        part["properties"]["tasks"]["maxItems"] = 5
    return json_schema_to_gbnf(json.dumps(part))


# --- exports --------------------------------------------------------------------------------------------

EVENT_COLUMNS = ("title", "start", "end", "all_day", "timezone", "place", "people")
TASK_COLUMNS = ("what", "who", "due")


def to_json(events: list[dict], tasks: list[dict]) -> str:
    """The schema's object, as JSON text."""
    return json.dumps({"events": events, "tasks": tasks}, ensure_ascii=False, indent=2)


def to_csv(items: list[dict], kind: str = "event") -> str:
    """Events or tasks as CSV with a header row (people joined with "; ")."""
    columns = EVENT_COLUMNS if kind == "event" else TASK_COLUMNS
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for item in items:
        row = []
        for col in columns:
            value = item.get(col)
            if isinstance(value, list):
                value = "; ".join(value)
            elif isinstance(value, bool):
                value = "yes" if value else "no"
            row.append("" if value is None else value)
        writer.writerow(row)
    return out.getvalue()
