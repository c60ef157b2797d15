"""The Inbox page's list of triaged mail (a table model) and the details of one message, as HTML: why its category,
its folder, events and tasks, its text.

The list's category cell has a colour chip per category and says "not sure" for an unsure one; its folder cell
says "not sure" when the filing model is, with the top three folders and their chances in its tooltip. Times are
shown in the user's local time (the store keeps them with their UTC offset); an all-day event's end is the day
after it ends, as in iCalendar, so the last day shown is the one before it.
"""

from __future__ import annotations

import datetime as dt
import html
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QWidget

from assistant.inbox import triage
from assistant.inbox.categories import CATEGORIES, LABELS, UNSURE_BELOW

COLUMNS = ("Date", "From", "Subject", "Category", "Folder", "Events", "Tasks")
DATE, FROM, SUBJECT, CATEGORY, FOLDER, EVENTS, TASKS = range(len(COLUMNS))
# One colour per category, mid-tone so that the chip reads on light and dark themes alike.
COLOURS = {
    "needs_reply": "#d9534f",
    "waiting": "#e69a28",
    "event": "#4a78d6",
    "task": "#9b59b6",
    "fyi": "#8a9499",
    "newsletter": "#1f9e89",
    "personal": "#d96ba8",
}
# The list's names of the categories: short, so that the subject keeps the width (the full names are in the filter,
# the tooltip and the details).
SHORT = {
    "needs_reply": "Needs a reply",
    "waiting": "Waiting",
    "event": "Event",
    "task": "Task",
    "fyi": "FYI",
    "newsletter": "Newsletter",
    "personal": "Personal",
}

e = html.escape


def _day(d: dt.date) -> str:
    return f"{d:%a} {d.day} {d:%b %Y}"


def _parse(value: str) -> dt.datetime | dt.date | None:
    try:
        if len(value) == 10:
            return dt.date.fromisoformat(value)
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _local(when: dt.datetime) -> dt.datetime:
    return when.astimezone() if when.tzinfo is not None else when  # a time without offset stays as written


def local_when(value: str | None, *, short: bool = False) -> str:
    """A stored date or date-time in the user's local time: ``2026-03-05 15:00`` (short), ``Thu 5 Mar 2026, 15:00``."""
    if not value:
        return ""
    when = _parse(value)
    if when is None:
        return value
    if not isinstance(when, dt.datetime):
        return when.isoformat() if short else _day(when)
    when = _local(when)
    return f"{when:%Y-%m-%d %H:%M}" if short else f"{_day(when)}, {when:%H:%M}"


def event_when(event: dict[str, Any]) -> str:
    """When an event is, in the user's local time: ``Thu 5 Mar 2026, 15:00–16:00 CET``, ``Fri 6 Mar 2026 (all day)``."""
    start, end = _parse(event.get("start") or ""), _parse(event.get("end") or "")
    if start is None:
        return event.get("start") or "no date"
    if not isinstance(start, dt.datetime):
        last = end - dt.timedelta(days=1) if isinstance(end, dt.date) and not isinstance(end, dt.datetime) else None
        days = f"{_day(start)} – {_day(last)}" if last is not None and last > start else _day(start)
        return f"{days} (all day)"
    start = _local(start)
    text = f"{_day(start)}, {start:%H:%M}"
    if isinstance(end, dt.datetime):
        end = _local(end)
        text += f"–{end:%H:%M}" if end.date() == start.date() else f" – {_day(end)}, {end:%H:%M}"
    zone = start.tzname() if start.tzinfo is not None else None
    return f"{text} {zone}" if zone else text


def _who(t: triage.Triaged) -> str:
    if t.sent_by_me:
        return "you"
    if t.from_name and t.from_addr:
        return f"{t.from_name} <{t.from_addr}>"
    return t.from_name or t.from_addr or "an unknown sender"


def _category(t: triage.Triaged, colour: str) -> str:
    sure = "not sure" if t.confidence < UNSURE_BELOW else "sure"
    chip = f'<span style="color:{colour}">■</span> '
    by = " (the model's choice)" if t.category_source == "model" else ""
    return f"{chip}<b>{e(LABELS.get(t.category, t.category))}</b> — {sure}, {t.confidence:.0%}{by}: {e(t.reason)}"


def _folder(filing: dict[str, Any] | None) -> str:
    if not filing:
        return "none (no folders of yours to learn from)"
    top = " · ".join(f"{e(f['folder'])} {f['p']:.0%}" for f in (filing.get("top") or [])[:3])
    first = e(filing.get("folder") or "") if filing.get("sure") else "not sure"
    return f"{first} ({top})" if top else first


def _events(events: list[dict[str, Any]]) -> str:
    items = []
    for ev in events:
        parts = [f"<b>{e(ev.get('title') or '(untitled)')}</b>", e(event_when(ev))]
        if ev.get("place"):
            parts.append(f"at {e(ev['place'])}")
        if ev.get("people"):
            parts.append("with " + e(", ".join(ev["people"])))
        items.append("<li>" + " · ".join(parts) + "</li>")
    return f"<h4>Events ({len(events)})</h4><ul>{''.join(items)}</ul>" if items else ""


def _tasks(found: list[dict[str, Any]]) -> str:
    items = []
    for task in found:
        parts = [f"<b>{e(task.get('what') or '')}</b>"]
        who = task.get("who")
        if who:
            parts.append("for " + ("you" if who == "me" else e(who)))
        if task.get("due"):
            parts.append("due " + e(local_when(task["due"])))
        items.append("<li>" + " · ".join(parts) + "</li>")
    return f"<h4>Tasks ({len(found)})</h4><ul>{''.join(items)}</ul>" if items else ""


def detail_html(t: triage.Triaged, body: str | None) -> str:
    """``t`` as the page's detail pane shows it; ``body`` None while the text is being read."""
    rows = [
        ("From", e(_who(t))),
        ("Date", e(local_when(t.date)) or "none"),
        ("Category", _category(t, COLOURS.get(t.category, "#888888"))),
        ("Folder", _folder(t.filing)),
    ]
    draft = getattr(t, "reply_draft", None)
    if draft:
        rows.append(("Reply", f"drafted in your voice: draft #{draft} on the Drafts page"))
    table = "".join(f"<tr><td><b>{k}:</b>&nbsp;</td><td>{v}</td></tr>" for k, v in rows)
    subject = e(" ".join(t.subject.split()) or "(no subject)")
    text = "Reading…" if body is None else body.strip() or "(no text)"
    message = f'<h4>Message</h4><p style="white-space: pre-wrap">{e(text)}</p>'
    return f"<h3>{subject}</h3><table>{table}</table>{_events(t.events)}{_tasks(t.tasks)}{message}"


def folder_text(filing: dict[str, Any] | None) -> str:
    """The suggested folder as the list shows it: "not sure" when the model is unsure; "" with no filing."""
    if not filing:
        return ""
    return (filing.get("folder") or "not sure") if filing.get("sure") else "not sure"


def folder_tip(filing: dict[str, Any] | None) -> str:
    if not filing or not filing.get("top"):
        return ""
    top = "\n".join(f"{t['folder']}: {t['p']:.0%}" for t in filing["top"][:3])
    return f"Where you would file it, as learned from your folders:\n{top}"


def category_text(t: triage.Triaged) -> str:
    """The list's short name of the category, and "not sure" for an unsure one (the tooltip has the full name)."""
    return SHORT.get(t.category, t.category) + (" (not sure)" if t.confidence < UNSURE_BELOW else "")


def chip(category: str) -> QIcon:
    """A round chip in the category's colour, ringed in white so that it shows on a selected row too."""
    if category not in _chips:
        size = 14
        pixmap = QPixmap(size, size)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(QColor(255, 255, 255, 200), 1.5))
        painter.setBrush(QColor(COLOURS.get(category, "#888888")))
        painter.drawEllipse(1, 1, size - 2, size - 2)
        painter.end()
        _chips[category] = QIcon(pixmap)
    return _chips[category]


_chips: dict[str, QIcon] = {}


class InboxModel(QAbstractTableModel):
    """Triaged messages as rows; UserRole holds what sorting compares."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.rows: list[triage.Triaged] = []

    def set_rows(self, rows: list[triage.Triaged]) -> None:
        self.beginResetModel()
        self.rows = rows
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | None = None) -> int:  # noqa: N802 - Qt's name
        return 0 if parent is not None and parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex | None = None) -> int:  # noqa: N802 - Qt's name
        return 0 if parent is not None and parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        t, col = self.rows[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(t, col)
        if role == Qt.ItemDataRole.UserRole:
            return self._key(t, col)
        if role == Qt.ItemDataRole.DecorationRole and col == CATEGORY:
            return chip(t.category)
        if role == Qt.ItemDataRole.FontRole and col == CATEGORY and t.confidence < UNSURE_BELOW:
            font = QFont()
            font.setItalic(True)
            return font
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tip(t, col)
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (EVENTS, TASKS):
            return int(Qt.AlignmentFlag.AlignCenter)
        return None

    @staticmethod
    def _text(t: triage.Triaged, col: int) -> str:
        if col == DATE:
            return local_when(t.date, short=True) if t.date else ""
        if col == FROM:
            return "you" if t.sent_by_me else t.from_name or t.from_addr
        if col == SUBJECT:
            return " ".join(t.subject.split()) or "(no subject)"
        if col == CATEGORY:
            return category_text(t)
        if col == FOLDER:
            return folder_text(t.filing)
        count = len(t.events if col == EVENTS else t.tasks)
        return str(count) if count else ""

    @staticmethod
    def _key(t: triage.Triaged, col: int) -> Any:
        if col == DATE:
            return t.date or ""
        if col == CATEGORY:
            return CATEGORIES.index(t.category) if t.category in CATEGORIES else len(CATEGORIES)
        if col in (EVENTS, TASKS):
            return len(t.events if col == EVENTS else t.tasks)
        return InboxModel._text(t, col).lower()

    @staticmethod
    def _tip(t: triage.Triaged, col: int) -> str | None:
        if col == FROM:
            return t.from_addr
        if col == SUBJECT:
            return t.subject
        if col == CATEGORY:
            sure = "not sure" if t.confidence < UNSURE_BELOW else "sure"
            return f"{LABELS.get(t.category, t.category)} ({sure}, {t.confidence:.0%}): {t.reason}"
        if col == FOLDER:
            return folder_tip(t.filing) or None
        return None
