"""How long something took or has left, as people read it; one format for the command line and the app."""

from __future__ import annotations


def format_duration(seconds: float) -> str:
    """``3.2s``, ``45s``, ``4m 05s``, ``1h 02m``: tenths under ten seconds, then the two largest units."""
    if seconds < 10:
        return f"{max(seconds, 0):.1f}s"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
