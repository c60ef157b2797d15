"""What a command's start costs: sqlite-utils is imported without pandas (see assistant/__init__.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    return done.stdout.strip()


def test_the_command_line_starts_without_pandas():
    pytest.importorskip("pandas")  # installed with trl's datasets; without it there is nothing to avoid
    code = "import sys, assistant.cli, assistant.importer, trainer.pairs; print('pandas' in sys.modules)"
    assert _run(code) == "False"


def test_pandas_still_imports_afterwards_and_the_store_works(tmp_path):
    pytest.importorskip("pandas")
    code = (
        "import assistant, pandas, sqlite_utils, sys\n"
        f"db = sqlite_utils.Database({str(tmp_path / 'x.db')!r})\n"
        "db['t'].insert({'a': 1, 'b': 'two', 'c': 3.5})\n"
        "print(pandas.__name__, list(db['t'].rows))"
    )
    assert _run(code) == "pandas [{'a': 1, 'b': 'two', 'c': 3.5}]"


def test_trainer_first_also_imports_sqlite_utils_the_light_way():
    pytest.importorskip("pandas")
    assert _run("import sys, trainer.pairs.store; print('pandas' in sys.modules)") == "False"


def test_pandas_imported_first_is_left_alone():
    pytest.importorskip("pandas")
    code = "import pandas, assistant, sqlite_utils.db as d; print(d.pd is pandas)"
    assert _run(code) == "True"


def test_an_import_starts_without_numpy_which_still_imports_afterwards(tmp_path):
    pytest.importorskip("numpy")
    code = (
        "import sys, assistant.cli, assistant.importer, sqlite_utils.db as d\n"
        "print('numpy' in sys.modules, d.np)\n"
        "import numpy\n"
        f"db = d.Database({str(tmp_path / 'x.db')!r})\n"
        "db['t'].insert({'a': 1, 'b': float(numpy.float64(2.5))})\n"
        "print(list(db['t'].rows))"
    )
    assert _run(code).splitlines() == ["False None", "[{'a': 1, 'b': 2.5}]"]


def test_numpy_imported_first_is_left_alone():
    pytest.importorskip("numpy")
    code = "import numpy, assistant, sqlite_utils.db as d; print(d.np is numpy, d.pd)"
    assert _run(code) == "True None"
