"""A 200-row mail merge killed (kill -9) at seeded points, then run again with the same command: every row is
drafted exactly once, and the output is the whole merge, in order.

Each try runs the real ``mailvoice batch RECIPIENTS.csv --instruction ...`` in a fresh process, on a
deterministic fake model, armed to SIGKILL itself at one event (an SQL statement: reading the rows done,
saving a draft, its commit; or a word the model is writing). The points are drawn from the events of a clean
run, one in each fifth of it. The same command then runs again in the test's process: it must ask the model
only for the rows that had no saved draft, and leave one draft per row and an output with every row once.
"""

from __future__ import annotations

import csv
import json
import random
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from test_drafting_cli import fake, run  # noqa: F401 - fake is a fixture

pytestmark = pytest.mark.slow

KILL_SEED = 4111
TRIES = 5
ROWS = 200
TESTS = str(Path(__file__).parent)
INSTRUCTION = "thank {name} for visiting the {company} stand"

CHILD = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[1])
    import killpoint
    switch = killpoint.arm(int(sys.argv[2]), sys.argv[3] or None)
    from fakes import FakeBackend
    from assistant.drafting import drafts as drafts_module

    class Ticking(FakeBackend):
        def stream(self, messages, params, cancel=None):
            for word in super().stream(messages, params, cancel):
                switch.tick()  # a kill here lands mid-draft
                yield word

    backend = Ticking()
    drafts_module.LlamaBackend = lambda settings: (backend.configure(settings), backend)[1]
    from assistant.cli import main
    sys.argv = ["mailvoice", *sys.argv[4:]]
    main()
    """
)


def merge_in_child(args: list[str], home: Path, at: int, tally: Path | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", CHILD, TESTS, str(at), str(tally or ""), *args]
    env = {"MAILVOICE_HOME": str(home), "PATH": "/usr/bin:/bin", "QT_QPA_PLATFORM": "offscreen"}
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)


def saved_rows(home: Path) -> list[int]:
    """The merge row of every saved draft, one entry per draft."""
    if not (home / "mailvoice.db").exists():
        return []
    conn = sqlite3.connect(home / "mailvoice.db")
    try:
        return [r[0] for r in conn.execute("SELECT json_extract(params, '$.origin.row') FROM drafts ORDER BY id")]
    finally:
        conn.close()


def test_a_merge_killed_at_seeded_points_and_run_again_drafts_each_row_once(fake, tmp_path, monkeypatch):  # noqa: F811
    people = tmp_path / "people.csv"
    people.write_text("name,email,company\n" + "".join(f"P{i},p{i}@a{i % 7}.example,C{i % 5}\n" for i in range(ROWS)))
    rows = list(range(2, ROWS + 2))

    clean, tally = tmp_path / "clean", tmp_path / "tally"
    args = ["batch", str(people), "--instruction", INSTRUCTION, "--seed", "1", "-o", str(tmp_path / "clean.csv")]
    done = merge_in_child(args, clean, 0, tally)
    assert done.returncode == 0, done.stderr[-2000:]
    total = int(tally.read_text())
    assert sorted(saved_rows(clean)) == rows

    rng = random.Random(KILL_SEED)  # one point in each fifth of the run, so early and late kills are both tried
    points = [rng.randrange(total * i // TRIES + 1, total * (i + 1) // TRIES + 1) for i in range(TRIES)]
    kept = []
    for n, at in enumerate(points):
        home, out = tmp_path / f"try-{n}", tmp_path / f"try-{n}.csv"
        args[-1] = str(out)
        killed = merge_in_child(args, home, at)
        assert killed.returncode == -9, f"point {at}/{total}: {killed.stderr[-1000:]}"
        before = saved_rows(home)
        kept.append(len(before))
        monkeypatch.setenv("MAILVOICE_HOME", str(home))
        asked = len(fake.prompts)
        code, stdout, stderr = run(*args, "--json")
        assert code == 0, stderr
        report = json.loads(stdout)
        # Rows with a saved draft are never asked for again, and every other row is, once.
        assert len(fake.prompts) - asked == report["drafted"] == ROWS - len(before), f"point {at}/{total}"
        assert report["resumed"] == len(before) and report["written"] == ROWS and not report["skipped"]
        assert sorted(saved_rows(home)) == rows, f"point {at}/{total}: a row drafted twice or not at all"
        with open(out, encoding="utf-8", newline="") as f:
            written = list(csv.DictReader(f))
        assert [int(r["row"]) for r in written] == rows
        assert len({r["draft_id"] for r in written}) == ROWS
    assert kept == sorted(kept) and kept[0] < ROWS
    print(f"kill points (of {total} events): {points}; rows saved when killed: {kept} of {ROWS}")
