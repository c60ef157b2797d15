"""The mail merge dialog, offscreen: a preview of three drafts, then the rest (the three kept); stop and resume;
a file that cannot be used says why; reached from the Drafts page."""

from __future__ import annotations

import csv
import threading
import time

import pytest
from fakes import FakeBackend

from assistant.drafting.drafts import list_drafts
from assistant.gui.drafts_page import DraftsPage
from assistant.gui.mailmerge_dialog import MailMergeDialog

ROWS = 6


class Holding(FakeBackend):
    """Holds its ``hold_at``-th draft (counting from 1) until it is stopped, once."""

    def __init__(self, hold_at: int = 0):
        super().__init__()
        self.hold_at = hold_at
        self.holding = threading.Event()

    def stream(self, messages, params, cancel=None):
        if len(self.prompts) + 1 == self.hold_at and cancel is not None:
            self.holding.set()
            self.hold_at = 0
            deadline = time.monotonic() + 20
            while not cancel() and time.monotonic() < deadline:
                time.sleep(0.01)
        return super().stream(messages, params, cancel)


@pytest.fixture
def people(tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("name,email,company\n" + "".join(f"P{i},p{i}@a.example,C{i}\n" for i in range(ROWS)))
    return path


def make_dialog(qtbot, data_home, people, backend) -> MailMergeDialog:
    dialog = MailMergeDialog(str(data_home), lambda: backend)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.csv.setText(str(people))
    dialog.instruction.setText("thank {name} for visiting")
    return dialog


def out_rows(path) -> list[str]:
    with open(path, encoding="utf-8", newline="") as f:
        return [r["row"] for r in csv.DictReader(f)]


def test_a_preview_of_three_then_the_rest_keeps_the_three(qtbot, data_home, people, tmp_path, db):
    fake = FakeBackend()
    dialog = make_dialog(qtbot, data_home, people, fake)
    assert dialog.preview_button.isEnabled() and not dialog.rest_button.isEnabled()
    with qtbot.waitSignal(dialog.previewed, timeout=30_000) as preview:
        dialog.preview_button.click()
    assert preview.args[0].written == 3 and dialog.list.count() == 3 and len(fake.prompts) == 3
    assert dialog.text.toPlainText() == "To: p0@a.example\nReply 1"
    assert dialog.list.item(0).text() == "Row 2 · P0" and dialog.status.text().startswith("Preview: 3 drafts.")
    assert dialog.rest_button.isEnabled()
    out = tmp_path / "out.csv"
    with qtbot.waitSignal(dialog.merged, timeout=30_000) as merged:
        dialog.draft_rest(str(out))
    report = merged.args[0]
    assert (report.resumed, report.drafted, report.written) == (3, 3, ROWS) and len(fake.prompts) == ROWS
    assert dialog.list.count() == ROWS and out_rows(out) == [str(r) for r in range(2, ROWS + 2)]
    assert dialog.status.text().startswith(f"Wrote {ROWS} drafts to {out}")
    assert len(list_drafts(db)) == ROWS
    dialog.tone.setText("formal")  # another merge: preview it first
    assert not dialog.rest_button.isEnabled()


def test_stop_keeps_what_is_drafted_and_running_again_resumes(qtbot, data_home, people, tmp_path, db):
    fake = Holding(hold_at=5)
    dialog = make_dialog(qtbot, data_home, people, fake)
    with qtbot.waitSignal(dialog.previewed, timeout=30_000):
        dialog.preview()
    out = tmp_path / "out.csv"
    dialog.draft_rest(str(out))
    qtbot.waitUntil(fake.holding.is_set, timeout=30_000)
    assert dialog.stop_button.isEnabled() and not dialog.instruction.isEnabled()
    with qtbot.waitSignal(dialog.merged, timeout=30_000) as stopped:
        dialog.stop_button.click()
    assert stopped.args[0].cancelled and stopped.args[0].written == 4
    assert dialog.status.text().startswith(f"Stopped: 4 of {ROWS} rows drafted")
    assert out_rows(out) == ["2", "3", "4", "5"] and dialog.rest_button.isEnabled()
    with qtbot.waitSignal(dialog.merged, timeout=30_000) as resumed:
        dialog.draft_rest(str(out))
    report = resumed.args[0]
    assert (report.resumed, report.drafted, report.written, report.cancelled) == (4, 2, ROWS, False)
    assert len(list_drafts(db)) == ROWS  # no row drafted twice
    assert out_rows(out) == [str(r) for r in range(2, ROWS + 2)]


def test_a_file_without_a_header_says_why(qtbot, data_home, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("ann@a.example,Ann\n")
    dialog = make_dialog(qtbot, data_home, bad, FakeBackend())
    with qtbot.waitSignal(dialog.failed, timeout=30_000) as failed:
        dialog.preview()
    assert "has no header row" in failed.args[0] and dialog.status.text() == failed.args[0]
    assert dialog.preview_button.isEnabled() and not dialog.rest_button.isEnabled()
    dialog.check_csv()
    qtbot.waitUntil(lambda: "has no header row" in dialog.columns.text(), timeout=10_000)


def test_the_drafts_page_opens_the_dialog_and_lists_its_drafts(qtbot, data_home, people):
    fake = FakeBackend()
    page = DraftsPage(str(data_home), backend_factory=lambda: fake)
    qtbot.addWidget(page)
    page.show()
    page.merge_button.click()
    dialog = page.merge_dialog
    assert dialog is not None and dialog.isVisible()
    dialog.csv.setText(str(people))
    dialog.check_csv()
    qtbot.waitUntil(lambda: dialog.columns.text().startswith(f"{ROWS} rows · columns: name, email, company"))
    dialog.instruction.setText("thank {name}")
    with qtbot.waitSignal(page.refreshed, timeout=30_000):
        dialog.preview()
    assert page.count.text() == "3 drafts"
    dialog.close()
