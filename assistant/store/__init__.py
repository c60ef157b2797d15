"""The SQLite store: one database in the data folder, opened through :func:`open_store`."""

from assistant.store.db import open_store, quick_check

__all__ = ["open_store", "quick_check"]
