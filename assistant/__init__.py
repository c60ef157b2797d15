"""Mailvoice: a private email assistant that writes in your voice."""

import sys

# sqlite-utils imports pandas when it is installed (it comes with trl's `datasets`) only to map pandas timestamps
# to a column type, which Mailvoice never hands it; that import is a quarter of a second of CPU at the start of
# every command (bench/import_bench.py). sqlite-utils is imported here without it; anything that needs pandas
# later imports it as usual.
if "pandas" not in sys.modules and "sqlite_utils" not in sys.modules:
    sys.modules["pandas"] = None  # type: ignore[assignment]  # makes `import pandas` raise ImportError
    try:
        import sqlite_utils  # noqa: F401
    finally:
        del sys.modules["pandas"]
