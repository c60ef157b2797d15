"""Keeps the app alive under a PySide6 6.12 fault on Python 3.11: ``None`` loses a reference per Qt call.

Every call of a Qt method that returns nothing (``setText``, ``setValue``, ``processEvents``…) hands back
``None`` without the reference it owes, so None's count falls by one per call; a few thousand calls after
start (a training run's progress makes that many in minutes) Python aborts with "deallocating None".
Python 3.12 made None immortal and is unaffected; on older versions :func:`keep_none_alive` gives None a
count no app session can use up, which is what 3.12 does.
"""

from __future__ import annotations

import ctypes
import sys

_PLENTY = 1 << 50  # a million calls a second would take 35 years


def keep_none_alive() -> None:
    """Make ``None``'s reference count unreachable by leaks (CPython before 3.12; elsewhere nothing to do)."""
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return
    count = ctypes.c_ssize_t.from_address(id(None))  # ob_refcnt: the first field of every CPython object
    if count.value < _PLENTY:
        count.value += _PLENTY
