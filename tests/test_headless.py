"""The core stays headless: only assistant/gui imports PySide6."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QT_IMPORT = re.compile(r"^\s*(from|import)\s+PySide6", re.M)


def test_only_the_gui_package_imports_qt():
    offenders = [
        str(p.relative_to(REPO))
        for folder in ("assistant", "trainer")
        for p in (REPO / folder).rglob("*.py")
        if QT_IMPORT.search(p.read_text(encoding="utf-8")) and "gui" not in p.relative_to(REPO).parts[:2]
    ]
    assert offenders == []


def test_core_imports_without_qt():
    import subprocess
    import sys

    code = "import sys, assistant.importer, assistant.cli; assert 'PySide6' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
