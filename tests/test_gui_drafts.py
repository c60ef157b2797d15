"""The Drafts page: the saved drafts in a table with search and sort, delete, CSV export, reopen in Compose."""

from __future__ import annotations

import csv

import pytest
from fakes import FakeBackend
from PySide6.QtCore import QItemSelectionModel, QSettings, Qt
from PySide6.QtWidgets import QMessageBox

from assistant.drafting import draft
from assistant.drafting.batch import EXPORT_COLUMNS
from assistant.drafting.guard import RETRIES
from assistant.gui.app import COMPOSE, DRAFTS, MainWindow
from assistant.gui.drafts_page import COLUMNS, DraftsPage

REPLIES = {
    "tell Anna I can't make Thursday": "Hi Anna,\n\nThursday won't work for me. Monday?\n\nBest,\nAlex",
    "ask Rosa if the plumber can come": "Hi Rosa,\n\nCould the plumber come on Monday morning?\n\nThanks,\nAlex",
    "thank Bob for the quarterly report": "Hi Bob,\n\nThanks for the report, it reads well.\n\nCheers,\nAlex",
}


@pytest.fixture
def saved(db) -> list[int]:
    """Three drafts saved through the core, as Compose and ``mailvoice draft`` save them."""
    ids = []
    for (instruction, reply), to in zip(REPLIES.items(), ("anna@example.org", "", "bob@example.com"), strict=True):
        fake = FakeBackend()
        fake.enqueue(reply)
        result = draft(db, instruction, to=to or None, length="short", backend=fake, seed=1)
        ids.append(result.drafts[0].id)
    return ids


@pytest.fixture
def page(qtbot, data_home, saved) -> DraftsPage:
    p = DraftsPage(str(data_home))
    qtbot.addWidget(p)
    p.show()
    with qtbot.waitSignal(p.refreshed, timeout=30_000):
        p.refresh()
    return p


def select_row(table, row: int) -> None:
    """Select one row whatever modifier keys an earlier test left pressed (selectRow would toggle with Ctrl)."""
    flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
    table.selectionModel().select(table.model().index(row, 0), flags)


def shown_column(p: DraftsPage, column: int) -> list[str]:
    return [p.proxy.index(r, column).data() for r in range(p.proxy.rowCount())]


def test_table_lists_drafts_newest_first_with_search_and_sort(page, saved):
    assert page.count.text() == "3 drafts"
    assert shown_column(page, 0) == [str(i) for i in sorted(saved, reverse=True)]
    assert set(shown_column(page, 2)) == set(REPLIES)
    page.search.setText("ROSA")  # case does not matter, the draft's own text is searched too
    assert shown_column(page, 2) == ["ask Rosa if the plumber can come"]
    assert page.count.text() == "1 of 3 drafts"
    page.search.setText("example")  # recipients: anna@example.org, bob@example.com
    assert sorted(shown_column(page, 3)) == ["anna@example.org", "bob@example.com"]
    page.search.clear()
    page.table.sortByColumn(2, Qt.SortOrder.AscendingOrder)
    assert shown_column(page, 2) == sorted(REPLIES)
    select_row(page.table, 0)
    assert page.preview.toPlainText() == REPLIES[sorted(REPLIES)[0]]


def test_export_writes_every_draft_as_the_cli_does(page, qtbot, tmp_path, db):
    out = tmp_path / "drafts.csv"
    page.export_to(str(out))
    qtbot.waitUntil(lambda: page.status.text().startswith("Wrote"), timeout=30_000)
    assert page.status.text() == f"Wrote 3 drafts to {out}."
    with open(out, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(EXPORT_COLUMNS)
    assert {r["instruction"]: r["generated_email"] for r in rows} == REPLIES
    stored = {r[0]: r[1] for r in db.execute("SELECT instruction, model FROM drafts")}
    assert all(r["model"] == stored[r["instruction"]] and r["created_at"] for r in rows)


def test_export_to_an_unwritable_place_says_so(page, qtbot, tmp_path):
    page.export_to(str(tmp_path / "no-such-folder" / "drafts.csv"))
    qtbot.waitUntil(lambda: page.status.text().startswith("Cannot write"), timeout=30_000)
    assert page.status.text().endswith("choose another file.")


def test_delete_asks_first_then_deletes(page, qtbot, saved, db):
    page.search.setText("plumber")
    select_row(page.table, 0)
    box = page.delete_selected()
    assert box.isVisible() and "Delete this draft?" in box.text()
    box.button(QMessageBox.StandardButton.Cancel).click()
    assert db.execute("SELECT COUNT(*) FROM drafts").fetchone()[0] == 3
    select_row(page.table, 0)
    assert [d["instruction"] for d in page.selected()] == ["ask Rosa if the plumber can come"]
    box = page.delete_selected()
    with qtbot.waitSignal(page.refreshed, timeout=30_000):
        next(b for b in box.buttons() if b.text() == "&Delete").click()
    assert [r[0] for r in db.execute("SELECT instruction FROM drafts ORDER BY id")] == [
        "tell Anna I can't make Thursday", "thank Bob for the quarterly report"]  # fmt: skip
    assert page.status.text() == "Deleted 1 draft."
    page.search.clear()
    assert page.count.text() == "2 drafts"


def test_a_draft_opens_back_in_compose(qtbot, data_home, saved, tmp_path):
    window = MainWindow(str(data_home), settings=QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    with qtbot.waitSignal(window.drafts.refreshed, timeout=30_000):
        window.nav.setCurrentRow(DRAFTS)
    window.drafts.search.setText("Anna")
    select_row(window.drafts.table, 0)
    window.drafts.compose_button.click()
    assert window.current_page() == COMPOSE
    assert window.compose.instruction.toPlainText() == "tell Anna I can't make Thursday"
    assert window.compose.to.text() == "anna@example.org"
    assert window.compose.length.currentText() == "short"
    assert window.compose.output.toPlainText() == REPLIES["tell Anna I can't make Thursday"]


def test_with_no_drafts_the_page_says_where_to_write_one(qtbot, data_home):
    page = DraftsPage(str(data_home))
    qtbot.addWidget(page)
    page.show()
    with qtbot.waitSignal(page.refreshed, timeout=30_000):
        page.refresh()
    assert page.empty.isVisible() and not page.table.isVisible()
    assert page.empty.text() == "No drafts yet — write one on Compose."


def test_a_search_that_finds_nothing_says_so_and_clearing_it_brings_the_table_back(page):
    page.search.setText("zebra")
    assert page.empty.isVisible() and "zebra" in page.empty.text() and page.count.text() == "0 of 3 drafts"
    page.search.clear()
    assert page.table.isVisible() and not page.empty.isVisible()


def test_enter_on_a_draft_row_opens_it(page, qtbot):
    page.search.setText("Rosa")
    select_row(page.table, 0)
    page.table.setFocus()
    qtbot.waitUntil(page.table.hasFocus, timeout=5_000)
    with qtbot.waitSignal(page.open_in_compose, timeout=5_000) as opened:
        qtbot.keyClick(page.table, Qt.Key.Key_Return)
    assert opened.args[0]["instruction"] == "ask Rosa if the plumber can come"


def test_export_adds_recipient_and_subject_after_the_contracts_columns(page, qtbot, tmp_path, db):
    with db.conn:
        db.execute("UPDATE drafts SET subject = 'Thursday' WHERE recipient = 'anna@example.org'")
    out = tmp_path / "drafts.csv"
    page.export_to(str(out))
    qtbot.waitUntil(lambda: page.status.text().startswith("Wrote"), timeout=30_000)
    with open(out, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    contract = ["instruction", "generated_email", "created_at", "model", "adapter", "reply_to"]
    assert list(rows[0])[:8] == [*contract, "to", "subject"]
    by_instruction = {r["instruction"]: r for r in rows}
    assert by_instruction["tell Anna I can't make Thursday"]["to"] == "anna@example.org"
    assert by_instruction["tell Anna I can't make Thursday"]["subject"] == "Thursday"
    assert by_instruction["ask Rosa if the plumber can come"]["to"] == ""


def test_a_draft_that_looks_incomplete_is_marked_in_the_table_and_above_its_text(qtbot, data_home, db):
    fake = FakeBackend()
    fake.enqueue(*["Thank you, Christian."] * (RETRIES + 1))  # every try of it
    draft(db, "send Christian the slides", backend=fake)
    page = DraftsPage(str(data_home))
    qtbot.addWidget(page)
    page.show()
    with qtbot.waitSignal(page.refreshed, timeout=30_000):
        page.refresh()
    check = [c for c, (key, _title) in enumerate(COLUMNS) if key == "flag"][0]
    assert page.proxy.index(0, check).data() == "⚠ incomplete"
    select_row(page.table, 0)
    assert page.flag_note.isVisible() and "only a greeting or a sign-off" in page.flag_note.text()
