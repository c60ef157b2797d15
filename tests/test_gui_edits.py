"""The Train page's "Your edits": the drafts the user used, what changed, leaving one out, and the refresh button."""

from __future__ import annotations

import re

from PySide6.QtCore import Qt

from assistant.drafting.corrections import capture, list_corrections
from assistant.drafting.drafts import save_draft
from assistant.gui.corrections_panel import CorrectionsPanel
from assistant.store.adapters import list_adapters, register

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


def _trainable_adapter(db, root, name="style-a"):
    """A registered adapter on the embedded model with PEFT files beside it (the stand-in trainer refreshes it)."""
    import json as _json

    from assistant.drafting.models import embedded_model_path
    from trainer.base_model import identify

    best = root / "runs" / f"run-{name}" / "best"
    best.mkdir(parents=True)
    (best / "adapter_config.json").write_text(_json.dumps({"r": 4, "lora_alpha": 8, "target_modules": ["q_proj"]}))
    (best / "adapter_model.safetensors").write_bytes(b"stand-in")
    gguf = root / "adapters" / name / "adapter.gguf"
    gguf.parent.mkdir(parents=True)
    gguf.write_bytes(b"GGUF stand-in")
    return register(db, root, name, gguf, identify(embedded_model_path()).to_json(), {"lora_r": 4}, {}, best.parent)


def _box_button(box, text):
    return next(b for b in box.buttons() if b.text() == text)


def test_refresh_my_voice_asks_with_an_estimate_then_tunes_and_registers_a_new_adapter(qtbot, db, data_home,
                                                                                         monkeypatch):  # fmt: skip
    from fake_trainer import with_fake
    from test_gui_train import BIG, machine

    from assistant.gui.train_page import TrainPage
    from assistant.store.db import set_setting
    from trainer import jobs

    _trainable_adapter(db, data_home)
    set_setting(db, "train", {"batch_size": 1, "grad_accum": 1, "max_seq_len": 512, "examples_probability": 0.0})
    for n in range(12):
        _used(db, f"Rosa - Monday {n} instead? A.")
    real = jobs.prepare_preference_run
    monkeypatch.setattr(jobs, "prepare_preference_run",
                        lambda *a, **k: with_fake(real(*a, **k), steps=3, delay=0, export=True))  # fmt: skip
    page = TrainPage(str(data_home), preflight=machine(BIG))
    qtbot.addWidget(page, before_close_func=lambda w: w.shutdown())
    page.refresh()
    qtbot.waitUntil(lambda: page.edits.loaded is not None and page.edits.refresh_button.isEnabled(), timeout=20_000)
    assert page.edits.refresh_button.text() == "Refresh my voice — 11 new edits"  # one of 12 kept aside
    page.edits.refresh_button.click()
    qtbot.waitUntil(lambda: getattr(page, "refresh_box", None) is not None, timeout=20_000)
    text = page.refresh_box.text()
    assert "Tune style-a on 11 of your edits" in text and "1 of the newest are kept aside" in text
    assert "This takes " in text
    _box_button(page.refresh_box, "&Refresh").click()
    qtbot.waitUntil(lambda: not page.training and "is ready" in page.progress_label.text(), timeout=30_000)
    new = [a["name"] for a in list_adapters(db) if a["name"] != "style-a"]
    assert len(new) == 1 and new[0].startswith("style-a-refresh-")
    said = page.progress_label.text()
    assert re.search(r"On your newest edit, kept aside, your text is now likelier than the old draft in \d+% of "
                     r"them \(50% before\)", said), said  # fmt: skip


def test_refresh_with_too_few_edits_says_how_many_are_needed(qtbot, db, data_home):
    from test_gui_train import BIG, machine

    from assistant.gui import tasks
    from assistant.gui.train_page import TrainPage

    _trainable_adapter(db, data_home)
    for n in range(3):
        _used(db, f"Rosa - Monday {n} instead? A.")
    shown = []
    page = TrainPage(str(data_home), preflight=machine(BIG))
    qtbot.addWidget(page, before_close_func=lambda w: w.shutdown())
    tasks_show = tasks.show_error
    try:
        tasks.show_error = lambda _p, message, _t="": shown.append(message)
        page.ask_refresh()
        qtbot.waitUntil(lambda: bool(shown), timeout=20_000)
    finally:
        tasks.show_error = tasks_show
    assert "at least 8 corrections whose words you changed" in shown[0] and not page.training
    assert "at least 8" in page.status.text()
