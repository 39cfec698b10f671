"""How figures are written, the same on every tab and in ``--once --format text``.

Counts, rates, sizes, durations, ages, shares and times: each kind has one formatter, so
that a figure reads the same wherever it is shown. Every result is short enough for a
column and empty for an unknown value (None).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime, timedelta

ESTIMATE_MARK = "~"
"""Before a size that is an estimate (``relpages``), not the files' size."""


def _scaled(value: float) -> str:
    """A large figure with a unit: ``12.3k``, ``4.5M``, ``123G``."""
    for unit in ("k", "M", "G", "T"):
        value /= 1000
        if abs(value) < 1000 or unit == "T":
            return f"{value:.1f}{unit}" if abs(value) < 100 else f"{value:.0f}{unit}"
    raise AssertionError("unreachable")


@functools.lru_cache(maxsize=4096)
def count(value: float | None) -> str:
    """A count: whole below 10,000, then with a unit.

    >>> count(7), count(1500), count(9999), count(12345), count(2_500_000), count(None)
    ('7', '1500', '9999', '12.3k', '2.5M', '')
    """
    if value is None:
        return ""
    if abs(value) < 10_000:
        return str(round(value))
    return _scaled(value)


def rate(value: float | None) -> str:
    """A rate per second, with the digits that matter.

    >>> rate(0), rate(0.25), rate(12.34), rate(42.5), rate(456.7), rate(12345.0), rate(None)
    ('0', '0.25', '12.3', '42.5', '457', '12.3k', '')
    """
    if value is None:
        return ""
    if value == 0:
        return "0"
    if abs(value) < 10:
        return f"{value:.2f}"
    if abs(value) < 100:
        return f"{value:.1f}"
    if abs(value) < 1000:
        return f"{value:.0f}"
    return _scaled(value)


def size(num_bytes: float | None) -> str:
    """Bytes with binary units.

    >>> size(0), size(1536), size(5 * 1024**3), size(None)
    ('0 B', '1.5 KiB', '5.0 GiB', '')
    """
    if num_bytes is None:
        return ""
    value = float(num_bytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


@functools.lru_cache(maxsize=4096)
def sized(num_bytes: int, estimate: bool) -> str:
    """A size, marked when it is an estimate.

    >>> sized(2048, True), sized(2048, False)
    ('~2.0 KiB', '2.0 KiB')
    """
    return f"{ESTIMATE_MARK}{size(num_bytes)}" if estimate else size(num_bytes)


def duration(seconds: float | None) -> str:
    """A compact duration: ``4.2s``, ``12m03s``, ``3h05m``, ``2d04h``.

    >>> duration(4.24), duration(723), duration(11100), duration(187200), duration(None)
    ('4.2s', '12m03s', '3h05m', '2d04h', '')
    """
    if seconds is None:
        return ""
    if seconds < 0:
        seconds = 0.0
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def age(then: datetime | None, now: datetime) -> float | None:
    """Seconds from ``then`` to ``now``, or None when ``then`` is unknown."""
    if then is None:
        return None
    delta: timedelta = now - then
    return delta.total_seconds()


def ago(then: datetime | None, now: datetime) -> str:
    """How long ago ``then`` was, as a duration; empty when unknown.

    >>> from datetime import datetime
    >>> now = datetime(2026, 1, 1, 0, 12, 3)
    >>> ago(datetime(2026, 1, 1, 0, 0), now), ago(None, now)
    ('12m03s', '')
    """
    return duration(age(then, now))


def percent(share: float | None) -> str:
    """A share as a percentage: one decimal below 10 %.

    >>> percent(0.1234), percent(0.004), percent(0.999), percent(None)
    ('12%', '0.4%', '100%', '')
    """
    if share is None:
        return ""
    value = share * 100
    return f"{value:.1f}%" if value < 10 else f"{value:.0f}%"


def hit_ratio(share: float | None) -> str:
    """A hit ratio, where the tenths near 100 % matter.

    >>> hit_ratio(0.99123), hit_ratio(1.0), hit_ratio(None)
    ('99.1%', '100.0%', '')
    """
    return "" if share is None else f"{share:.1%}"


def millis(ms: float | None) -> str:
    """A time given in milliseconds.

    >>> millis(0.0123), millis(12.345), millis(456.7), millis(83_000), millis(None)
    ('0.012ms', '12.35ms', '457ms', '1m23s', '')
    """
    if ms is None:
        return ""
    if ms < 1:
        return f"{ms:.3f}ms"
    if ms < 100:
        return f"{ms:.2f}ms"
    if ms < 1000:
        return f"{ms:.0f}ms"
    return duration(ms / 1000)


def cores(value: float | None) -> str:
    """Seconds of work per second of wall clock (about how many cores' worth).

    >>> cores(0.8312), cores(12.0), cores(None)
    ('0.83', '12.00', '')
    """
    return "" if value is None else f"{value:.2f}"


def quantity(value: float | None, unit: str) -> str:
    """A measure in its unit: seconds as a duration, ``%`` as a percentage, ``x`` as a
    factor, anything else as a number followed by the unit.

    >>> quantity(90, "s"), quantity(86.2, "%"), quantity(5, "x"), quantity(2, ""), \
quantity(1.5, "/min")
    ('1m30s', '86%', '5x', '2', '1.5/min')
    """
    if value is None:
        return ""
    if unit == "s":
        return duration(value)
    if unit == "%":
        return percent(value / 100)
    number = f"{value:g}" if value < 10_000 else count(value)
    return f"{number}{unit}"


SPARK_BLOCKS = "▁▂▃▄▅▆▇█"


def spark(values: Sequence[float]) -> str:
    """A sparkline: one block per value, from zero to the largest.

    >>> spark([0, 1, 2, 4, 8]), spark([0, 0]), spark([])
    ('▁▂▃▅█', '▁▁', '')
    """
    top = max(values, default=0.0)
    if top <= 0:
        return SPARK_BLOCKS[0] * len(values)
    last = len(SPARK_BLOCKS) - 1
    return "".join(SPARK_BLOCKS[round(max(v, 0.0) / top * last)] for v in values)


def done_of(done: int, total: int | None, unit: str = "") -> str:
    """How much of a command's work is done, with the figures it comes from.

    >>> done_of(1234, 5678), done_of(12, None), done_of(3 * 1024**2, 12 * 1024**2, "bytes")
    ('1,234 of 5,678 (21.7 %)', '12', '3.0 MiB of 12.0 MiB (25.0 %)')
    """
    shown = size if unit == "bytes" else "{:,}".format
    if not total or total <= 0:
        return shown(done)
    return f"{shown(done)} of {shown(total)} ({min(done / total, 1.0):.1%})".replace("%)", " %)")


def against_mean(elapsed_s: float, mean_ms: float) -> str:
    """How a running statement's time so far compares with its mean.

    >>> against_mean(12.3, 300), against_mean(0.5, 2000), against_mean(3, 0)
    ('running 12.3 s, 41x its mean of 300ms', 'running 0.5 s, 0.25x its mean of 2.00 s', \
'running 3.0 s; its mean is 0')
    >>> against_mean(27.5, 0.177)
    'running 27.5 s, 155,367x its mean of 0.177ms'
    """
    running = f"running {elapsed_s:.1f} s" if elapsed_s < 60 else f"running {duration(elapsed_s)}"
    mean_s = mean_ms / 1000
    if mean_s <= 0:
        return f"{running}; its mean is 0"
    factor = elapsed_s / mean_s
    times = f"{factor:,.0f}x" if factor >= 10 else f"{factor:.2g}x"
    # Under a second in milliseconds, as the line above gives it: "0.00 s" says nothing.
    mean = (
        millis(mean_ms)
        if mean_ms < 1000
        else f"{mean_s:.2f} s"
        if mean_s < 60
        else duration(mean_s)
    )
    return f"{running}, {times} its mean of {mean}"
