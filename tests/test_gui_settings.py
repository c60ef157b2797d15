"""The Settings page: model metadata and refusal of non-GGUF files, threads and GPU layers, adapter, data folder,
the network guard's state, and forgetting everything after a confirmation."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import mailgen as gen
import numpy as np
import pytest
from gguf import GGUFWriter
from PySide6.QtCore import QPoint, QSettings
from PySide6.QtWidgets import QApplication, QMessageBox

from assistant import netguard
from assistant.drafting.catalogue import load_catalogue
from assistant.drafting.models import MODEL_KEY, embedded_model_path, engine_settings
from assistant.gui import tasks
from assistant.gui.models_panel import HEADERS, ModelsPanel
from assistant.gui.settings_page import DATA_DIR_KEY, SettingsPage
from assistant.importer import import_paths
from assistant.paths import DB_NAME
from assistant.store import open_store
from assistant.store.adapters import register
from assistant.store.db import get_setting

BASE = {"path": "/models/base.gguf", "size": 123, "sha256": "ab" * 32}


def tiny_gguf(path: Path, name: str = "Tiny Chat") -> Path:
    """A header-only chat model GGUF: enough for metadata, not for llama.cpp."""
    w = GGUFWriter(str(path), "llama")
    w.add_name(name)
    w.add_context_length(2048)
    w.add_file_type(7)  # MOSTLY_Q8_0
    w.add_chat_template("{% for m in messages %}{{ m['content'] }}{% endfor %}")
    w.add_tensor("tok_embd.weight", np.zeros((16, 8), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture
def qsettings(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def page(qtbot, data_home, qsettings) -> SettingsPage:
    p = SettingsPage(str(data_home), qsettings)
    qtbot.addWidget(p)
    p.show()
    with qtbot.waitSignal(p.refreshed, timeout=30_000):
        p.refresh()
    return p


def test_shows_the_embedded_models_metadata(page):
    assert page.model_path.text() == str(embedded_model_path())
    assert "Smollm2 135M" in page.meta["name"].text()
    assert page.meta["parameters"].text() == "135M"
    assert page.meta["quantisation"].text() == "Q4_1"
    assert page.meta["context_length"].text() == "8,192 tokens"
    assert page.meta["chat_template"].text() == "yes"
    assert not page.default_button.isEnabled()  # already on the embedded model


def test_choosing_a_gguf_shows_its_metadata_and_drafts_with_it(page, qtbot, tmp_path, db):
    model = tiny_gguf(tmp_path / "tiny-chat.gguf")
    with qtbot.waitSignal(page.refreshed, timeout=30_000):
        page.choose_model_file(str(model))
    assert get_setting(db, MODEL_KEY) == str(model.resolve())
    assert page.model_path.text() == str(model.resolve())
    assert page.meta["name"].text() == "Tiny Chat"
    assert page.meta["quantisation"].text() == "Q8_0"
    assert page.meta["context_length"].text() == "2,048 tokens"
    assert page.meta["parameters"].text() == "128"
    assert page.default_button.isEnabled()
    with qtbot.waitSignal(page.refreshed, timeout=30_000):
        page.default_button.click()
    assert get_setting(db, MODEL_KEY) is None and page.model_path.text() == str(embedded_model_path())


def test_a_models_own_name_is_shown_as_text_not_markup(page, qtbot, tmp_path):
    model = tiny_gguf(tmp_path / "odd.gguf", name="<b>Tiny</b> & <i>Chat</i>")
    with qtbot.waitSignal(page.refreshed, timeout=30_000):
        page.choose_model_file(str(model))
    label = page.meta["name"]
    assert label.text() == "<b>Tiny</b> & <i>Chat</i>"
    assert label.sizeHint().width() >= label.fontMetrics().horizontalAdvance(label.text())  # the tags are shown


def test_a_file_that_is_not_gguf_is_refused_with_a_clear_message(page, qtbot, tmp_path, db):
    notes = tmp_path / "model.gguf"
    notes.write_text("these are not weights\n")
    page.choose_model_file(str(notes))
    qtbot.waitUntil(lambda: "not a GGUF model file" in page.model_message.text(), timeout=30_000)
    box = next(b for b in page.findChildren(QMessageBox) if b.isVisible())
    assert box.windowTitle() == "Not a usable model" and "Download a GGUF" in box.text()
    assert get_setting(db, MODEL_KEY) is None
    assert page.meta["quantisation"].text() == "Q4_1"  # the model in use is still shown


def test_threads_and_gpu_layers_are_stored_where_drafting_reads_them(page, db):
    page.threads.setValue(3)
    page.gpu_layers.setValue(0)
    tasks.writer(page.workspace).wait()  # settings are written by the app's one writer, in order
    settings, _ = engine_settings(db)
    assert (settings.n_threads, settings.n_gpu_layers) == (3, 0)
    page.threads.setValue(0)  # "Automatic"
    page.gpu_layers.setValue(-1)
    tasks.writer(page.workspace).wait()
    assert get_setting(db, "n_threads") is None and get_setting(db, "n_gpu_layers") is None
    assert page.threads.text().startswith("Automatic")


def test_the_widths_are_stored_where_labelling_and_batches_read_them(page, db):
    from fakes import FakeBackend, FakeParallel

    from assistant.drafting.drafts import drafting_engine

    class Widening(FakeBackend):
        def parallel(self, width=None):
            return FakeParallel(self, width or 5)

    page.label_width.setValue(4)
    page.draft_width.setValue(2)
    tasks.writer(page.workspace).wait()
    assert (get_setting(db, "label_width"), get_setting(db, "draft_width")) == (4, 2)
    assert drafting_engine(db, Widening()).width == 2  # what batch, merge and eval will use
    page.label_width.setValue(0)  # "Automatic"
    page.draft_width.setValue(0)
    tasks.writer(page.workspace).wait()
    assert get_setting(db, "label_width") is None and get_setting(db, "draft_width") is None
    assert page.draft_width.text().startswith("Automatic")
    assert drafting_engine(db, Widening()).width == 5  # the engine's own choice


def test_adapters_are_listed_and_the_choice_is_stored(qtbot, data_home, qsettings, db, tmp_path):
    for name in ("style-a", "style-b"):
        register(db, data_home, name, tmp_path / f"{name}.gguf", BASE, {"lora_r": 8}, {"eval_loss": 1.5},
                 data_home / "runs" / name)  # fmt: skip
    page = SettingsPage(str(data_home), qsettings)
    qtbot.addWidget(page)
    with qtbot.waitSignal(page.refreshed, timeout=30_000):
        page.refresh()
    names = [page.adapter.itemData(i) for i in range(page.adapter.count())]
    assert names[0] is None and sorted(names[1:]) == ["style-a", "style-b"]
    assert "validation loss 1.500" in page.adapter.itemText(1)
    page.adapter.activated.emit(names.index("style-b"))
    qtbot.waitUntil(lambda: page.adapter_message.text() == "Drafts now use style-b.", timeout=10_000)
    assert get_setting(db, "adapter") == "style-b"
    page.adapter.activated.emit(0)
    qtbot.waitUntil(lambda: page.adapter_message.text() == "Drafts now use no adapter.", timeout=10_000)
    assert get_setting(db, "adapter") is None


def test_a_new_data_folder_is_remembered_for_the_next_start(page, qsettings, tmp_path, monkeypatch):
    monkeypatch.delenv("MAILVOICE_HOME")
    page.set_data_dir(str(tmp_path / "elsewhere"))
    assert QSettings(qsettings.fileName(), QSettings.Format.IniFormat).value(DATA_DIR_KEY) == str(
        tmp_path / "elsewhere"
    )
    assert page.data_message.text() == f"Mailvoice will use {tmp_path / 'elsewhere'} from its next start."
    assert page.data_path.text() == str(page.workspace.root)  # this session keeps its folder


def test_privacy_panel_reports_the_network_guard(page, monkeypatch):
    for key in netguard.OFFLINE_ENV:
        monkeypatch.delenv(key, raising=False)  # restored after the test, whatever install sets
    page.show_offline()
    assert page.offline.text().startswith("<b>The network guard is not on</b>")
    netguard.install()
    try:
        with netguard.recording() as recorder:
            page.recorder = recorder
            with pytest.raises(netguard.NetworkBlocked):
                socket.create_connection(("192.0.2.1", 443), timeout=1)
            page.show_offline()
    finally:
        netguard.uninstall()
    text = page.offline.text()
    assert text.startswith("<b>Offline</b>") and "1 attempts refused since start" in text
    assert f"{len(netguard.OFFLINE_ENV)} of {len(netguard.OFFLINE_ENV)} libraries" in text


def test_forget_asks_for_confirmation_then_empties_the_store(page, qtbot, data_home, tmp_path, db):
    box_path = tmp_path / "All mail.mbox"
    gen.write_mbox(box_path, gen.generate_messages(60, seed=3))
    import_paths(db, [box_path])
    assert db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] > 40
    question = page.ask_forget()
    assert question.isVisible() and "messages" in question.text() and "cannot be undone" in question.text()
    question.button(QMessageBox.StandardButton.Cancel).click()
    assert (data_home / DB_NAME).exists()
    assert open_store(data_home).execute("SELECT COUNT(*) FROM messages").fetchone()[0] > 40
    question = page.ask_forget()
    with qtbot.waitSignal(page.forgotten, timeout=30_000):
        next(b for b in question.buttons() if b.text() == "&Forget everything").click()
    assert page.forget_message.text().startswith("Deleted ")
    fresh = open_store(data_home)
    assert [fresh.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("messages", "import_runs")] == [0, 0]


# --- the Models panel --------------------------------------------------------------------------------------
def loaded_models(qtbot, page: SettingsPage) -> ModelsPanel:
    with qtbot.waitSignal(page.models.refreshed, timeout=30_000):
        page.models.refresh()
    return page.models


def test_the_models_panel_lists_recommended_models_with_what_they_need_here(page, qtbot):
    panel = loaded_models(qtbot, page)
    catalogue = load_catalogue()
    table = panel.table
    assert table.rowCount() == len(catalogue.models)
    assert [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())] == list(HEADERS)
    first, row = catalogue.models[0], [table.item(0, c).text() for c in range(table.columnCount())]
    assert row[0] == f"{first.name} {first.quantisation}" and row[1] == f"{first.size_bytes / 1e9:.1f} GB"
    assert row[2].startswith(f"{first.memory_bytes() / 1e9:.1f} GB") and row[4] == first.url.removeprefix("https://")
    speed = catalogue.reference.tokens_per_second * catalogue.reference.size_bytes / first.size_bytes
    assert row[3] == f"about {speed:.1f} tokens/s (documented)"  # nothing drafted here yet
    assert "documented, not yet measured here" in panel.note.text() and "BENCHMARKS.md" in panel.note.text()
    assert "built-in demo model" in panel.active_label.text() and "Voice: none" in panel.active_label.text()


def test_once_this_machine_has_drafted_the_speeds_are_scaled_from_its_measurement(page, qtbot, db):
    embedded = embedded_model_path()
    for _ in range(3):
        db["drafts"].insert({"model": embedded.name, "tokens": 81, "seconds": 2.0,
                             "params": json.dumps({"first_token_seconds": 1.0})})  # fmt: skip
    panel = loaded_models(qtbot, page)
    first = load_catalogue().models[0]
    speed = 80.0 * embedded.stat().st_size / first.size_bytes
    assert panel.table.item(0, 3).text() == f"about {speed:.1f} tokens/s (measured)"
    assert "measured on this machine" in panel.note.text() and "at 80 tokens/s" in panel.note.text()


def test_choosing_a_file_in_the_models_panel_drafts_with_it(page, qtbot, tmp_path, db):
    panel = loaded_models(qtbot, page)
    model = tiny_gguf(tmp_path / "tiny-chat.gguf")
    with qtbot.waitSignal(panel.refreshed, timeout=30_000):
        panel.choose_file(str(model))
    assert get_setting(db, MODEL_KEY) == str(model.resolve()) and page.model_path.text() == str(model.resolve())
    assert "<b>Tiny Chat</b>" in panel.active_label.text() and panel.message.text() == "Drafts now use Tiny Chat."


def test_compose_can_lead_to_the_panel_however_small_the_window(page, qtbot):
    def panel_top() -> int:  # where the panel starts in the visible part of the page
        return page.models.mapTo(page.scroll.viewport(), QPoint(0, 0)).y()

    page.resize(900, 160)
    qtbot.waitUntil(lambda: panel_top() >= page.scroll.viewport().height(), timeout=5_000)  # below the fold
    page.show_models()
    assert 0 <= panel_top() < page.scroll.viewport().height() and page.scroll.verticalScrollBar().value() > 0


def test_the_download_page_opens_in_the_browser_and_the_link_can_be_copied(qtbot, data_home):
    opened: list[str] = []
    panel = ModelsPanel(str(data_home), open_url=lambda url: opened.append(url.toString()) or True)
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.refreshed, timeout=30_000):
        panel.refresh()
    assert not panel.page_button.isEnabled() and not panel.copy_button.isEnabled()  # nothing chosen yet
    panel.table.selectRow(2)
    panel.page_button.click()
    panel.copy_button.click()
    url = load_catalogue().models[2].url
    assert opened == [url] and QApplication.clipboard().text() == url and panel.message.text() == f"Copied {url}."


def test_forget_in_a_folder_that_also_holds_the_persons_files_says_what_it_left(page, qtbot, data_home, db):
    """A folder an older version adopted: forget deletes only Mailvoice's files, names the rest, and does not
    make a new store among them (Mailvoice no longer uses a folder of someone else's files)."""
    (data_home / "taxes.txt").write_text("mine")
    question = page.ask_forget()
    with qtbot.waitSignal(page.forgotten, timeout=30_000):
        next(b for b in question.buttons() if b.text() == "&Forget everything").click()
    text = page.forget_message.text()
    assert "taxes.txt" in text and "Choose a new or empty data folder" in text
    assert (data_home / "taxes.txt").read_text() == "mine" and not (data_home / DB_NAME).exists()


def test_a_folder_of_someone_elses_files_is_refused_as_the_data_folder_at_once(page, tmp_path, monkeypatch):
    shown = []
    monkeypatch.setattr(tasks, "show_error", lambda _parent, message: shown.append(message))
    theirs = tmp_path / "Documents"
    theirs.mkdir()
    (theirs / "letter.odt").write_text("x")
    page.set_data_dir(str(theirs))
    assert shown and "letter.odt" in shown[0] and page.qsettings.value(DATA_DIR_KEY) != str(theirs)
    page.set_data_dir(str(tmp_path / "new-folder"))
    assert page.qsettings.value(DATA_DIR_KEY) == str(tmp_path / "new-folder")
