"""kill -9 at a chosen point of a run, for the kill tests of import, pair building and training.

A process armed here counts its own events: every SQL statement any of its SQLite connections starts (BEGIN,
each row of an ``executemany``, COMMIT...), plus whatever a test ticks (model chunks, file writes). At the
N-th event it sends itself SIGKILL, before that event takes effect, exactly as a kill from outside would land
there: no ``finally``, no ``atexit``, no flush. A kill point is therefore a number a seed can pick and a
failing try can replay, and points can be spread evenly over the whole run, not only where a timer happens
to fall. A run that is not killed writes its event count to a tally file, which is how a test learns how
many points a clean run has.

As a script it runs the real ``mailvoice`` command line armed from the environment:
``MAILVOICE_TEST_KILL_AT=N MAILVOICE_TEST_KILL_TALLY=FILE python tests/killpoint.py import PATH ...``.
"""

from __future__ import annotations

import atexit
import os
import signal
import sqlite3
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

KILL_AT = "MAILVOICE_TEST_KILL_AT"
TALLY = "MAILVOICE_TEST_KILL_TALLY"


class Switch:
    """Counts events; SIGKILLs this process at event number ``at`` (0: never)."""

    def __init__(self, at: int = 0, tally: str | None = None):
        self.at, self.count, self.tally = at, 0, tally
        if tally:
            atexit.register(self.write_tally)

    def tick(self, _what: object = None) -> None:
        self.count += 1
        if self.count == self.at:
            kill_self()

    def write_tally(self) -> None:
        assert self.tally is not None
        Path(self.tally).write_text(str(self.count))


def kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)
    while True:  # SIGKILL cannot be caught or blocked; this only waits for it to land
        time.sleep(1)


def run_forked(fn: Callable[[], None], switch: Switch, at: int) -> int:
    """Run ``fn`` in a forked copy of this process armed to die at event ``at``; return how it ended (-9 when
    killed). For a process that loaded something slow (a model) once: every copy starts from it."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            switch.at, switch.count = at, 0
            fn()
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def arm(at: int | None = None, tally: str | None = None) -> Switch:
    """Count every SQL statement of every connection opened from now on (from the environment by default)."""
    at = int(os.environ.get(KILL_AT, "0")) if at is None else at
    switch = Switch(at, tally if tally is not None else os.environ.get(TALLY))
    real = sqlite3.connect

    def connect(*args, **kwargs):
        conn = real(*args, **kwargs)
        conn.set_trace_callback(switch.tick)
        return conn

    sqlite3.connect = connect
    return switch


def main() -> None:
    arm()
    from assistant.cli import main as mailvoice

    sys.argv = ["mailvoice", *sys.argv[1:]]
    mailvoice()


if __name__ == "__main__":
    main()
