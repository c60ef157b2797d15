"""The model badge on Compose: which model and voice write the drafts, said plainly, with the way to a better model.

On the built-in demo model (SmolLM2-135M) the badge says drafts will be rough; otherwise it names the model and
the voice (adapter) in use. Its button asks for the Models panel (signal ``models_requested``).
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

from assistant.drafting.catalogue import ActiveModel, active_model
from assistant.gui import tasks
from assistant.workspace import Workspace

DEMO_TEXT = "Built-in demo model — drafts will be rough."


def _load(ws: Workspace) -> ActiveModel:
    return active_model(ws.db)


def describe(active: ActiveModel) -> str:
    """The badge's text (rich text) for the model and voice in use."""
    if active.problem:
        return f"⚠ {html.escape(active.problem)}"
    voice = html.escape(active.adapter) if active.adapter else "none (the model alone)"
    if active.builtin:
        what = f"<b>{DEMO_TEXT}</b>"
        return what if not active.adapter else f"{what} Voice: {voice}."
    return f"Model: <b>{html.escape(active.name)}</b> · voice: {voice}"


class ModelBadge(QFrame):
    """Signals: models_requested() when its button is clicked; shown(object) with the ActiveModel shown."""

    models_requested = Signal()
    shown = Signal(object)

    def __init__(self, ws: Workspace | str, parent: QWidget | None = None):
        super().__init__(parent)
        self.workspace = Workspace.of(ws)
        self.active: ActiveModel | None = None
        self.loads = 0  # only the latest load is shown: an older one may finish last
        self.setObjectName("modelBadge")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.label = QLabel("Model: …", textFormat=Qt.TextFormat.RichText, wordWrap=True)
        self.button = QPushButton("Models…")
        self.button.clicked.connect(self.models_requested)
        row = QHBoxLayout(self)
        row.setContentsMargins(8, 4, 8, 4)
        row.addWidget(self.label, 1)
        row.addWidget(self.button)

    def refresh(self) -> None:
        ws = self.workspace
        self.loads += 1
        load = self.loads
        tasks.call(self, lambda: _load(ws), lambda active: self.show_active(active, load), self.label.setText)

    def show_active(self, active: ActiveModel, load: int | None = None) -> None:
        if load is not None and load != self.loads:
            return
        self.active = active
        self.label.setText(describe(active))
        self.label.setToolTip(active.path)
        self.button.setText("Use a better model…" if active.builtin else "Models…")
        self.shown.emit(active)
