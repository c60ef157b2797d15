"""Mailvoice: a private email assistant that writes in your voice."""

import sys

# sqlite-utils imports pandas when it is installed (it comes with trl's `datasets`) only to map pandas timestamps
# to a column type, and numpy to map numpy's number types, neither of which Mailvoice ever hands it (its tables are
# made by its migrations); those imports are a quarter and a twentieth of a second of CPU at the start of every
# command (bench/import_bench.py). sqlite-utils is imported here without them; anything that needs pandas or numpy
# later imports it as usual. One already imported is left as it is.
_LEFT_OUT = [name for name in ("pandas", "numpy") if name not in sys.modules]
if "sqlite_utils" not in sys.modules and "pandas" in _LEFT_OUT:
    for _name in _LEFT_OUT:
        sys.modules[_name] = None  # type: ignore[assignment]  # makes `import pandas` raise ImportError
    try:
        import sqlite_utils  # noqa: F401
    finally:
        for _name in _LEFT_OUT:
            del sys.modules[_name]
