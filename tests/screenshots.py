"""Screenshots of every page of the app, for the README: ``python tests/screenshots.py [OUT_DIR]``.

The real app on the embedded model: a generated mailbox (Alex Morgan's) is imported into a temporary data
folder with the same core as ``mailvoice import``, training pairs are built from its sent mail and a tiny
adapter is trained on them (``mailvoice pairs build`` and ``mailvoice train``: the Train page shows real pairs,
losses and an adapter), the plain model and the adapter are evaluated (the Train page's verdict compares
them), a few drafts are written with the real model, the Inbox page triages the mail, and each page is saved as a PNG
(``make screenshots`` runs this under Xvfb). Nothing of the user's is read or changed: the data folder, the
window settings and the "home" folder the import wizard searches are all temporary.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from assistant import netguard

DRAFTS = (
    ("ask Rosa if the plumber can come on Monday morning", "rosa@properties.example.net"),
    ("thank Maya for the signed contract and propose a kickoff call next week", "maya.fischer@client.example.net"),
)
# Compose answers the newest received email that REPLY_SEARCH finds; the seed makes the screenshot reproducible.
COMPOSE = "say Tuesday at 3 works and I'll send an invite"
REPLY_SEARCH = "Atlas 30 minutes"
COMPOSE_SEED = 3
# Every sent email of the mailbox: its validation split (one thread in ten) then holds the 10 emails a verdict
# needs (11 of 234).
PAIRS = 240
# A run small enough for a laptop CPU in a few minutes: it shows real losses and an adapter, not a voice.
TRAINING = {
    "max_steps": 12,
    "epochs": 10,
    "batch_size": 1,
    "grad_accum": 1,
    "max_seq_len": 256,
    "learning_rate": 2e-3,
    "lora_r": 8,
    "lora_alpha": 16,
    "eval_every": 3,
    "eval_max_examples": 2,
    "checkpoint_every": 6,
    "parity": False,
}
SIZE = (1100, 720)


def prepare(tmp: Path) -> tuple[Path, Path]:
    """A data folder with a generated mailbox imported and two drafts; and a home with Takeout and Thunderbird."""
    import mailgen as gen  # tests/mailgen: run as a script, tests/ is on the path

    from assistant.drafting import LlamaBackend, draft, engine_settings
    from assistant.gui.adapters_panel import EVAL_LIMIT
    from assistant.importer import import_paths
    from assistant.paths import data_dir
    from assistant.store import open_store
    from assistant.store.adapters import use_adapter
    from trainer.evaluation import evaluate
    from trainer.pairs.build import build_pairs

    home = tmp / "home"
    takeout = home / "Downloads/Takeout/Mail"
    takeout.mkdir(parents=True)
    gen.write_mbox(takeout / "All mail Including Spam and Trash.mbox", gen.generate_messages(800, seed=11))
    thunderbird = home / ".thunderbird/x1y2z3.default-release/Mail/Local Folders"
    thunderbird.mkdir(parents=True)
    gen.write_mbox(thunderbird / "Archives", gen.generate_messages(300, seed=12), gmail_labels=False)
    (thunderbird / "Archives.msf").write_text('// <!-- <mdb:mork:z v="1.4"/> -->\n')
    root = data_dir(tmp / "mailvoice")
    db = open_store(root)
    import_paths(db, [takeout])
    build_pairs(db, LlamaBackend(engine_settings(db)[0]), limit=PAIRS)
    train(db, root)
    evaluate(db, root, adapter=None, examples=True, limit=EVAL_LIMIT)  # what the Train page's verdict compares with
    use_adapter(db, "none")  # the drafts shown are the base model's: a 12-step adapter is no voice yet
    for instruction, to in DRAFTS:
        draft(db, instruction, to=to, seed=7, length="short")
    return root, home


def train(db, root: Path) -> Path:
    """A tiny real training run (the worker process, as ``mailvoice train``), registered as ``my-voice``."""
    from assistant.store.db import set_setting
    from trainer import jobs
    from trainer.process import TrainingProcess

    set_setting(db, jobs.SETTINGS_KEY, TRAINING)
    cfg = jobs.resolve_config(db)
    examples = jobs.training_examples(db)
    run_dir = jobs.prepare_run(db, root, cfg, examples, jobs.run_preflight(root, cfg, examples), "my-voice")
    proc = TrainingProcess(run_dir)
    proc.start()
    for _event in proc.events():
        pass
    if jobs.finish(db, root, run_dir, proc.final or {}) is None:
        raise SystemExit(f"The training run for the screenshots failed: {proc.log_tail()}")
    return run_dir


def settle(app, seconds: float = 0.6, until: Callable[[], bool] | None = None, timeout: float = 120.0) -> None:
    """Let the event loop run (background loads finish and paint) for ``seconds``, or until ``until()``."""
    from assistant.gui import tasks

    end = time.monotonic() + timeout
    start = time.monotonic()
    while time.monotonic() < end:
        app.processEvents()
        busy = any(t.isRunning() for t, _w in tasks._running)
        if (until is None or until()) and not busy and time.monotonic() - start >= seconds:
            break
        time.sleep(0.02)
    app.processEvents()


def shoot(widget, out: Path, name: str) -> None:
    path = out / f"{name}.png"
    if not widget.grab().save(str(path)):
        raise SystemExit(f"Could not write {path}.")
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> int:
    netguard.install()  # the screenshots show the app as it runs: offline
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0] if argv else "resources/screenshots").resolve()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mailvoice-demo-") as name:
        tmp = Path(name)
        os.environ["MAILVOICE_HOME"] = str(tmp / "mailvoice")
        root, home = prepare(tmp)
        shots(root, home, tmp, out)
    return 0


def shots(root: Path, home: Path, tmp: Path, out: Path) -> None:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from assistant.drafting.backend import unload
    from assistant.gui.app import COMPOSE as COMPOSE_PAGE
    from assistant.gui.app import DRAFTS as DRAFTS_PAGE
    from assistant.gui.app import INBOX, MAIL, SETTINGS, TRAIN, MainWindow

    app = QApplication.instance() or QApplication(["mailvoice"])
    app.setApplicationName("Mailvoice")
    settings = QSettings(str(tmp / "gui.ini"), QSettings.Format.IniFormat)
    window = MainWindow(str(root), settings=settings, home=home, wizard_on_first_start=False)
    window.resize(*SIZE)
    window.show()
    with netguard.recording() as recorder:
        window.settings_page.recorder = recorder
        pages = ((MAIL, "mail"), (TRAIN, "train"), (DRAFTS_PAGE, "drafts"), (INBOX, "inbox"), (SETTINGS, "settings"))
        for index, name in pages:
            window.nav.setCurrentRow(index)
            if index == TRAIN:
                show_training(app, window.train, root)
            if index == INBOX:
                show_inbox(app, window.inbox)
            if index == DRAFTS_PAGE:
                settle(app)
                window.drafts.table.selectRow(0)
            settle(app, 1.0)
            shoot(window, out, name)
        window.nav.setCurrentRow(COMPOSE_PAGE)
        compose_reply(app, window.compose)
        settle(app, 1.5)  # the status bar polls its job chips once a second: the finished draft's goes
        shoot(window, out, "compose")
        wizard_shots(app, window, home, out)
    window.close()
    unload()


def show_training(app, page, root: Path) -> None:
    """The Train page with a pair selected, the tiny run's losses in the chart, its adapter selected and evaluated
    (the verdict in words, against the plain model's evaluation)."""
    from trainer import jobs
    from trainer.metrics import MetricsLog

    settle(app, 0.5, lambda: not page.pairs.loading and page.pairs.table.model().rowCount() > 0)
    page.pairs.table.selectRow(0)
    (run_dir,) = jobs.runs_root(root).iterdir()
    page.chart.clear()
    for event in MetricsLog(run_dir / "metrics.jsonl").read():
        page.chart.add_event(event)
    page.adapters.table.selectRow(0)
    page.adapters.evaluate()
    settle(app, 0.5, lambda: not page.adapters.evaluating, timeout=1800)


def show_inbox(app, page) -> None:
    """The Inbox page after Triage my mail (rules and filing, as ``mailvoice triage``), a message with an event
    selected."""
    from assistant.gui.inbox_view import EVENTS

    settle(app, 0.3)
    page.empty_triage.click()
    settle(app, 0.5, lambda: not page.running and page.model.rowCount() > 0)
    rows = [r for r in range(page.proxy.rowCount()) if page.proxy.index(r, EVENTS).data()]
    page.table.selectRow(rows[0] if rows else 0)


def compose_reply(app, page) -> None:
    """Compose answering a stored email, found with the picker as a person would, and the reply written."""
    picker = page.pick_reply()
    picker.search.setText(REPLY_SEARCH)
    picker.timer.stop()
    picker.run_search()
    settle(app, 0.5, lambda: bool(picker.rows))
    received = next(i for i, row in enumerate(picker.rows) if not row["sent_by_me"])
    picker.results.setCurrentItem(picker.results.topLevelItem(received))
    picker.accept()
    settle(app, 0.3, lambda: page.reply is not None)
    page.instruction.setPlainText(COMPOSE)
    page.tone.setCurrentText("friendly")
    page.length.setCurrentText("short")
    page.seed = COMPOSE_SEED
    page.generate()
    settle(app, 0.5, lambda: not page.writing, timeout=300)


def wizard_shots(app, window, home: Path, out: Path) -> None:
    """The import wizard: its first page (mail found on this computer), then its summary."""
    from PySide6.QtCore import Qt

    wizard = window.open_import_wizard([])
    settle(app)
    shoot(wizard, out, "import")
    found = wizard.sources_page.found
    for i in range(found.count()):
        if "Thunderbird" in found.item(i).text():
            wizard.sources_page.add_paths([found.item(i).data(Qt.ItemDataRole.UserRole)])
    wizard.next()
    settle(app, 0.3, wizard.preview_page.isComplete)
    wizard.next()
    settle(app, 0.3, wizard.import_page.isComplete)
    wizard.next()
    settle(app, 0.3, wizard.identities_page.isComplete)
    wizard.next()
    settle(app, 0.5, wizard.summary_page.isComplete)
    shoot(wizard, out, "import-summary")
    wizard.accept()


if __name__ == "__main__":
    sys.exit(main())
