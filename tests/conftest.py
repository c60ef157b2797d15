"""Shared fixtures: every test gets its own data folder, and the shared corpora when they exist."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest

# Qt tests run offscreen unless a display is chosen on purpose (screenshots under Xvfb).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parents[1]
CORPORA = Path(os.environ.get("MAILVOICE_SHARED", REPO.parent / "shared")) / "corpora"


@pytest.fixture(autouse=True)
def data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("MAILVOICE_HOME", str(home))
    return home


@pytest.fixture(autouse=True)
def fake_trainer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Training processes run tests/fake_trainer.py: the real worker, whose training a run's ``fake`` section
    replaces with a step counter (runs without one train for real)."""
    from trainer.process import TrainingProcess

    monkeypatch.setattr(TrainingProcess, "worker_module", "fake_trainer")
    tests = str(Path(__file__).resolve().parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [tests, os.environ.get("PYTHONPATH")])))


@pytest.fixture(autouse=True)
def collect_widgets_on_the_gui_thread(request: pytest.FixtureRequest):
    """After a Qt test, its garbage (widgets in reference cycles) is collected here, on the GUI thread. Left to
    Python, a collection may start in a later test's worker thread and delete widgets there, which crashes Qt
    (seen once in test_gui_compose, under load)."""
    yield
    if "qtbot" in request.fixturenames:
        gc.collect()


@pytest.fixture
def db(data_home: Path):
    from assistant.paths import data_dir
    from assistant.store import open_store

    return open_store(data_dir())


@pytest.fixture
def corpora() -> Path:
    if not CORPORA.is_dir():
        pytest.skip("../shared/corpora is not here")
    return CORPORA
