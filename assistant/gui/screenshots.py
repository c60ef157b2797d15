"""Screenshots of every page of the app, for the README: ``python -m assistant.gui.screenshots [OUT_DIR]``.

The real app on the embedded model: a generated mailbox (Alex Morgan's) is imported into a temporary data
folder with the same core as ``mailvoice import``, a few drafts are written with the real model, and each
page is saved as a PNG (``make screenshots`` runs this under Xvfb). Nothing of the user's is read or changed:
the data folder, the window settings and the "home" folder the import wizard searches are all temporary.
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
COMPOSE = ("tell Hannah I can't make Thursday's review, propose Monday at 10 instead", "hannah.becker@example.org")
SIZE = (1100, 720)


def prepare(tmp: Path) -> tuple[Path, Path]:
    """A data folder with a generated mailbox imported and two drafts; and a home with Takeout and Thunderbird."""
    from assistant.drafting import draft
    from assistant.importer import import_paths
    from assistant.mail import generate as gen
    from assistant.paths import data_dir
    from assistant.store import open_store

    home = tmp / "home"
    takeout = home / "Downloads/Takeout/Mail"
    takeout.mkdir(parents=True)
    gen.write_mbox(takeout / "All mail Including Spam and Trash.mbox", gen.generate_messages(800, seed=11))
    thunderbird = home / ".thunderbird/x1y2z3.default-release/Mail/Local Folders"
    thunderbird.mkdir(parents=True)
    gen.write_mbox(thunderbird / "Archives", gen.generate_messages(300, seed=12), gmail_labels=False)
    (thunderbird / "Archives.msf").write_text("// <!-- <mdb:mork:z v=\"1.4\"/> -->\n")
    root = data_dir(tmp / "mailvoice")
    db = open_store(root)
    import_paths(db, [takeout])
    for instruction, to in DRAFTS:
        draft(db, instruction, to=to, seed=7, length="short")
    return root, home


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
    from assistant.gui.app import MAIL, SETTINGS, TRAIN, MainWindow

    app = QApplication.instance() or QApplication(["mailvoice"])
    app.setApplicationName("Mailvoice")
    settings = QSettings(str(tmp / "gui.ini"), QSettings.Format.IniFormat)
    window = MainWindow(str(root), settings=settings, home=home, wizard_on_first_start=False)
    window.resize(*SIZE)
    window.show()
    with netguard.recording() as recorder:
        window.settings_page.recorder = recorder
        for index, name in ((MAIL, "mail"), (TRAIN, "train"), (DRAFTS_PAGE, "drafts"), (SETTINGS, "settings")):
            window.nav.setCurrentRow(index)
            if index == DRAFTS_PAGE:
                settle(app)
                window.drafts.table.selectRow(0)
            settle(app, 1.0)
            shoot(window, out, name)
        window.nav.setCurrentRow(COMPOSE_PAGE)
        window.compose.instruction.setPlainText(COMPOSE[0])
        window.compose.to.setText(COMPOSE[1])
        window.compose.generate()
        settle(app, 0.5, lambda: not window.compose.thread.isRunning(), timeout=300)
        shoot(window, out, "compose")
        wizard_shots(app, window, home, out)
    window.close()
    unload()


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
