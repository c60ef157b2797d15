"""The Mail page's reading pane: one stored message, with exactly the text kept as the author's own words, and set
apart from it what was taken out (quoted text, signature); why mail is automated, its folder, labels and attachment
names; and for the user's own mail whether it teaches their style (:func:`assistant.mail.browse.message_detail`).

Colours come from the palette (the set-apart box uses its alternate base), so light and dark themes both work.
"""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette, QTextBlockFormat, QTextCharFormat, QTextCursor, QTextFrameFormat
from PySide6.QtWidgets import QTextBrowser, QWidget

from assistant.mail.identity import AUTOMATED, LIST, RECEIVED, YOURS

CLASS_NAMES = {YOURS: "Yours", RECEIVED: "Received", LIST: "List", AUTOMATED: "Automated"}


class ReadingPane(QTextBrowser):
    """One message: its header, the text kept as the author's own words, and apart from it what was taken out.

    Esc goes back to the list (signal ``leave``). ``shown`` is the message on display (None for none).
    """

    leave = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.shown: dict[str, Any] | None = None
        self.setOpenLinks(False)  # mail text is shown, never followed
        self.setTabChangesFocus(True)
        self.setPlaceholderText("Choose a message to read it.")

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if event.key() == Qt.Key.Key_Escape:
            self.leave.emit()
            return
        super().keyPressEvent(event)

    def show_message(self, detail: dict[str, Any] | None) -> None:
        """Show ``detail`` (a :func:`assistant.mail.browse.message_detail`); the same message again keeps its place."""
        same = detail is not None and self.shown is not None and self.shown["id"] == detail["id"]
        place = self.verticalScrollBar().value()
        self.shown = detail
        self.clear()
        if detail is None:
            return
        cursor = QTextCursor(self.document())
        cursor.insertHtml(_header_html(detail))
        cursor.insertBlock(QTextBlockFormat(), QTextCharFormat())
        _heading(cursor, "Your words, as Mailvoice kept them" if detail["sent_by_me"] else "The author's words")
        _plain(cursor, detail["body"] or "(none: every line was quoted text or a signature)")
        taken = [("Quoted text (not the author's words)", detail["quoted"]), ("Signature", detail["signature"])]
        taken = [(title, text) for title, text in taken if text.strip()]
        if taken:
            self._set_apart(cursor, taken)
        self.moveCursor(QTextCursor.MoveOperation.Start)
        if same:
            self.verticalScrollBar().setValue(place)

    def _set_apart(self, cursor: QTextCursor, parts: list[tuple[str, str]]) -> None:
        """What was taken out, in a framed box on the palette's alternate colour (light and dark themes alike)."""
        frame = QTextFrameFormat()
        frame.setBorder(1)
        frame.setBorderBrush(self.palette().color(QPalette.ColorRole.Mid))
        frame.setBackground(self.palette().color(QPalette.ColorRole.AlternateBase))
        frame.setPadding(6)
        frame.setTopMargin(10)
        cursor.insertFrame(frame)
        _heading(cursor, "Taken out: not used as words of the author", size=1)
        for title, text in parts:
            _heading(cursor, title)
            _plain(cursor, text)


def _heading(cursor: QTextCursor, text: str, size: int = 0) -> None:
    """A bold line with space above it, on a block of its own."""
    spaced = QTextBlockFormat()
    spaced.setTopMargin(10)
    if cursor.block().text():
        cursor.insertBlock(spaced)
    else:
        cursor.setBlockFormat(spaced)
    bold = QTextCharFormat()
    bold.setFontWeight(700)
    if size:
        bold.setFontPointSize(cursor.document().defaultFont().pointSizeF() + size)
    cursor.insertText(text, bold)
    cursor.insertBlock(QTextBlockFormat(), QTextCharFormat())


def _plain(cursor: QTextCursor, text: str) -> None:
    """``text`` exactly as stored (every line, every space), in the normal font and without paragraph spacing."""
    cursor.setBlockFormat(QTextBlockFormat())
    cursor.insertText(text, QTextCharFormat())


def _when(date: str | None) -> str:
    """A stored date (ISO 8601, UTC) as people read it."""
    if not date:
        return "none (the message has no date Mailvoice could read)"
    return date.replace("T", " ").removesuffix("+00:00") + (" UTC" if date.endswith("+00:00") else "")


def _header_html(d: dict[str, Any]) -> str:
    def who(people: list[list[str]]) -> str:
        return ", ".join(f"{name} <{addr}>" if name and addr else name or addr for name, addr in people)

    e = html.escape
    kind = CLASS_NAMES.get(d["mail_class"], d["mail_class"] or "not classed")
    kind += f" — {d['auto_reason']}" if d["auto_reason"] else ""  # why automated; which list
    rows = [
        ("From", who([[d["from_name"], d["from_addr"]]])),
        ("To", who(d["to"])),
        ("Cc", who(d["cc"])),
        ("Date", _when(d["date"])),
        ("Kind", kind),
        ("Folder", d["folder"]),
        ("Labels", ", ".join(d["labels"])),
        ("Attachments", ", ".join(d["attachments"]) + " (names only: files are never stored)" * bool(d["attachments"])),
        ("Forward", "yes" * d["is_forward"]),
        ("Repaired", d["notes"]),
    ]
    table = "".join(f"<tr><td><b>{e(k)}:</b>&nbsp;</td><td>{e(v)}</td></tr>" for k, v in rows if v)
    teaches = d["teaches"]
    verdict = f"<p><b>{e(teaches['why'])}</b></p>" if teaches else ""
    subject = e(" ".join(d["subject"].split()) or "(no subject)")
    return f"<h3>{subject}</h3><table>{table}</table>{verdict}"
