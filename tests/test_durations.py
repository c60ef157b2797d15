import pytest

from assistant.durations import format_duration


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0.0s"), (0.44, "0.4s"), (9.96, "10.0s"), (10, "10s"), (59.9, "59s"), (65, "1m 05s"), (3599, "59m 59s"),
     (3600, "1h 00m"), (7325, "2h 02m"), (-3, "0.0s")],
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text
