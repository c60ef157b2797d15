"""Pair building killed (kill -9) at 20 seeded points over the whole run: the rerun ends exactly like a clean run.

Each try copies one imported store, runs a build in a fresh process with a deterministic fake model, and has
that process SIGKILL itself at one event: an SQL statement (reading candidates, the cache lookups, inside the
one transaction that writes a pair and its cache row, the speed setting, the split assignment at the end) or
a word the model is writing. The points are drawn from every event of a clean build. A second build in the
test's process then finishes the job; it must ask the model only for the emails whose pair was not yet
committed, and leave the same pairs (ids, instructions, inputs, outputs, splits, flags), the same cache and
nothing twice.
"""

from __future__ import annotations

import random
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import mailgen as gen
import pytest
from test_pairs_build import Labeller

from assistant.drafting.backend import EngineSettings
from assistant.importer import import_paths
from assistant.store import open_store
from trainer.pairs import build_pairs

pytestmark = pytest.mark.slow

KILL_SEED = 2029
TRIES = 20
TESTS = str(Path(__file__).parent)
PAIR_COLUMNS = (
    "id, message_id, thread_id, instruction, input, output, split, split_fixed, status, source, origin, flags, "
    "scrubbed, generated_instruction, tries, prompt_version, model, cache_key"
)

CHILD = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[1])
    import killpoint
    switch = killpoint.arm(int(sys.argv[3]), sys.argv[4] or None)
    from test_pairs_build import Labeller
    from assistant.drafting.backend import EngineSettings
    from assistant.store import open_store
    from trainer.pairs import build_pairs

    class Ticking(Labeller):
        def stream(self, messages, params, cancel=None):
            for word in super().stream(messages, params, cancel):
                switch.tick()  # a kill here lands mid-answer
                yield word

    build_pairs(open_store(sys.argv[2]), Ticking(settings=EngineSettings(model_path="fake.gguf", n_ctx=2048)),
                limit=None)
    """
)


def build_in_child(home: Path, at: int, tally: Path | None = None) -> subprocess.CompletedProcess:
    args = [sys.executable, "-c", CHILD, TESTS, str(home), str(at), str(tally or "")]
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


def copy_store(source: Path, home: Path) -> None:
    home.mkdir(mode=0o700)
    src, dst = sqlite3.connect(source / "mailvoice.db"), sqlite3.connect(home / "mailvoice.db")
    src.backup(dst)
    src.close()
    dst.close()


def snapshot(home: Path) -> tuple[list, list]:
    conn = sqlite3.connect(home / "mailvoice.db")
    pairs = conn.execute(f"SELECT {PAIR_COLUMNS} FROM pairs ORDER BY id").fetchall()
    cache = conn.execute(
        "SELECT cache_key, instruction, flags, tries, prompt_tokens, completion_tokens FROM pair_cache ORDER BY 1"
    ).fetchall()
    conn.close()
    return pairs, cache


def committed(home: Path) -> int:
    conn = sqlite3.connect(home / "mailvoice.db")
    try:
        return conn.execute("SELECT COUNT(*) FROM pairs").fetchone()[0]
    finally:
        conn.close()


def test_kill_9_at_20_seeded_points_then_rerun_equals_a_clean_build(tmp_path):
    imported = tmp_path / "imported"
    mbox = tmp_path / "mail.mbox"
    gen.write_mbox(mbox, gen.generate_messages(150, seed=11))
    import_paths(open_store(imported), [mbox], me=[gen.ME_ADDR])

    clean, tally = tmp_path / "clean", tmp_path / "tally"
    copy_store(imported, clean)
    done = build_in_child(clean, 0, tally)
    assert done.returncode == 0, done.stderr
    total, reference = int(tally.read_text()), snapshot(clean)
    usable = len(reference[0])
    assert usable > 20 and {row[6] for row in reference[0]} == {"train", "validation"}

    points = sorted(random.Random(KILL_SEED).sample(range(1, total + 1), TRIES))
    kept = []
    for n, at in enumerate(points):
        home = tmp_path / f"try-{n}"
        copy_store(imported, home)
        killed = build_in_child(home, at)
        assert killed.returncode == -9, f"point {at}/{total}: {killed.stderr[-500:]}"
        kept.append(committed(home))
        backend = Labeller(settings=EngineSettings(model_path="fake.gguf", n_ctx=2048))
        report = build_pairs(open_store(home, check=True), backend, limit=None)
        # Finished pairs are never asked for again, and every unfinished one is.
        assert len(backend.prompts) == report.built == usable - kept[-1], f"point {at}/{total}"
        assert snapshot(home) == reference, f"point {at}/{total}"
    assert kept == sorted(kept) and kept[0] < usable  # a later point never kept less
    print(f"kill points (of {total} events): {points}; pairs committed when killed: {kept} of {usable}")
