"""The Train page's "Your edits": the drafts the user used, what changed, leaving one out, and the refresh button."""

from __future__ import annotations

from PySide6.QtCore import Qt

from assistant.drafting.corrections import capture, list_corrections
from assistant.drafting.drafts import save_draft
from assistant.gui.corrections_panel import CorrectionsPanel
from assistant.store.adapters import register

MODEL_TEXT = "Hi Rosa,\n\nCould we move the review to Monday?\n\nBest,\nAlex"


def _used(db, final: str) -> int:
    draft_id = save_draft(db, instruction="ask Rosa to move the review", reply=None, recipient="rosa@example.org",
                          subject="", text=MODEL_TEXT, model="m.gguf", adapter="", params={}, seconds=1.0,
                          tokens=20)  # fmt: skip
    return capture(db, draft_id, final, "copied").id


def loaded(qtbot, panel):
    panel.reload()
    qtbot.waitUntil(lambda: panel.loaded is not None, timeout=10_000)


def test_with_no_edits_it_says_what_they_are_and_the_refresh_is_off(qtbot, db, data_home):
    panel = CorrectionsPanel(str(data_home))
    qtbot.addWidget(panel)
    loaded(qtbot, panel)
    assert "No edits yet" in panel.summary.text() and panel.table.rowCount() == 0
    assert not panel.refresh_button.isEnabled() and not panel.exclude_button.isEnabled()


def test_edits_are_listed_newest_first_and_one_can_be_left_out(qtbot, db, data_home, tmp_path):
    base = {"path": "/models/base.gguf", "size": 123, "sha256": "ab" * 32}
    register(db, data_home, "style-a", tmp_path / "a.gguf", base, {}, {}, data_home / "runs" / "a")
    db.execute("UPDATE adapters SET created_at = '2000-01-01T00:00:00+00:00'")
    db.conn.commit()
    _used(db, MODEL_TEXT)
    rewritten = _used(db, "Rosa - Monday instead? A.")
    panel = CorrectionsPanel(str(data_home))
    qtbot.addWidget(panel)
    loaded(qtbot, panel)
    assert panel.table.rowCount() == 2
    assert panel.table.item(0, 1).text() == "rewrote" and panel.table.item(1, 1).text() == "used as written"
    assert "2 drafts you used: 1 rewritten" in panel.summary.text()
    assert "<b>1</b> new edit since" in panel.summary.text()
    assert panel.refresh_button.text() == "Refresh my voice — 1 new edit" and panel.refresh_button.isEnabled()

    panel.table.selectRow(0)
    assert panel.final_text.toPlainText() == "Rosa - Monday instead? A."
    assert panel.model_text.toPlainText() == MODEL_TEXT
    panel.exclude_button.click()
    qtbot.waitUntil(lambda: "(left out)" in (panel.table.item(0, 1).text() if panel.table.item(0, 1) else ""),
                    timeout=10_000)  # fmt: skip
    assert [c.excluded for c in list_corrections(db) if c.id == rewritten] == [True]
    assert panel.exclude_button.text() == "&Include edit" and "0</b> new edits" in panel.summary.text()
    with qtbot.waitSignal(panel.refresh_requested, timeout=1000, raising=False) as asked:
        qtbot.mouseClick(panel.refresh_button, Qt.MouseButton.LeftButton)
    assert not asked.signal_triggered  # nothing left to learn from: the button is off
    panel.exclude_button.click()  # taken back
    qtbot.waitUntil(lambda: panel.table.item(0, 1).text() == "rewrote", timeout=10_000)
    assert [c.excluded for c in list_corrections(db) if c.id == rewritten] == [False]
