"""The server header and the connection banner; plain text only, never markup."""

from __future__ import annotations

import time
from collections import deque
from datetime import datetime
from typing import Protocol, cast

from rich.text import Text
from textual.widget import Widget

from pgtop.collectors.health import HealthData, Status
from pgtop.formats import duration, hit_ratio, rate, spark
from pgtop.model import ActivitySnapshot
from pgtop.text import name_text, one_line


class Monitoring(Protocol):
    """What the header and the banners show of the app's state."""

    interval: float
    paused: bool
    lost_since: datetime | None
    problem: str
    attempts: int
    action_status: str
    replay: str
    """Where in a recording the screen stands; "" on a server."""

    def describe_source(self) -> str: ...


def _state(widget: Widget) -> Monitoring:
    return cast(Monitoring, widget.app)


def header_text(
    snapshot: ActivitySnapshot | None,
    target: str,
    *,
    interval: float,
    paused: bool,
    age: float | None,
    stale: bool = False,
    replay: str = "",
) -> Text:
    """Two lines: where and what the server is, then what its sessions are doing.

    In a replay (``replay``: where in the recording), the recorded time instead of the
    refresh and the clock."""
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append("pgtop ", style="bold")
    text.append(name_text(target, 120))
    if snapshot is None:
        text.append("  connecting…", style="italic")
        return text
    caps = snapshot.capabilities
    text.append(f"  PostgreSQL {one_line(caps.server_version.split(' ')[0], 20)}")
    standby = snapshot.counters.in_recovery
    text.append("  standby" if standby else "  primary", style="bold")
    uptime = (snapshot.collected_at - caps.started_at).total_seconds()
    text.append(f"  up {duration(uptime)}")
    if replay:
        text.append("  REPLAY", style="reverse bold")
        text.append(f" {replay}")
    else:
        text.append(f"  every {interval:g}s")
        if paused:
            text.append("  ⏸ PAUSED", style="reverse bold")
        text.append(f"  at {snapshot.collected_at:%H:%M:%S}")
        if age is not None and (stale or age > max(3 * interval, 5.0)):
            text.append(f"  STALE {duration(age)}", style="reverse bold")
    text.append("\n")
    used = snapshot.client_connections
    limit = caps.max_connections
    full = used >= limit - caps.reserved_connections
    text.append(f"conns {used}/{limit}", style="reverse bold" if full else "bold")
    if full:
        text.append(" FULL", style="reverse bold")
    counts = (
        ("active", snapshot.count("active")),
        ("idle", snapshot.count("idle")),
        (
            "idle in tx",
            snapshot.count("idle in transaction") + snapshot.count("idle in transaction (aborted)"),
        ),
        ("waiting", snapshot.waiting),
    )
    for label, count in counts:
        text.append(f"  {label} ")
        text.append(str(count), style="bold")
    if snapshot.tps is not None:
        text.append(f"  tps {rate(snapshot.tps)}")
    if snapshot.cache_hit is not None:
        text.append(f"  cache hit {hit_ratio(snapshot.cache_hit)}")
    return text


SPARK_BUCKET = 15.0
"""Seconds each block of a header sparkline stands for (the largest value seen in them)."""
SPARK_BLOCKS_SHOWN = 16
"""Blocks per sparkline: the last four minutes."""
HEADER_PROBLEMS = 3
"""Findings the health line names at most."""


class Trend:
    """The last minutes of a few header figures, one value per ``SPARK_BUCKET`` seconds
    (kept in memory from the snapshots shown: no query of its own)."""

    NAMES = ("tps", "active", "waiting", "conns")

    def __init__(self) -> None:
        self._buckets: deque[tuple[int, dict[str, float]]] = deque(maxlen=SPARK_BLOCKS_SHOWN)

    def add(self, snapshot: ActivitySnapshot) -> None:
        bucket = int(snapshot.collected_at.timestamp() // SPARK_BUCKET)
        values = {
            "tps": snapshot.tps or 0.0,
            "active": float(snapshot.count("active")),
            "waiting": float(snapshot.waiting),
            "conns": float(snapshot.client_connections),
        }
        if self._buckets and self._buckets[-1][0] == bucket:
            last = self._buckets[-1][1]
            for name, value in values.items():
                last[name] = max(last[name], value)
        else:
            if self._buckets and self._buckets[-1][0] > bucket:
                # Back in time (a replay stepped back, the server's clock was set back): the
                # trend starts again rather than show what came after as the past.
                self._buckets.clear()
            self._buckets.append((bucket, values))

    def lines(self) -> list[tuple[str, str]]:
        """Each figure's name and sparkline (empty before two buckets)."""
        if len(self._buckets) < 2:
            return []
        return [(name, spark([v[name] for _, v in self._buckets])) for name in self.NAMES]


def health_text(data: HealthData | None, trend: Trend, width: int) -> Text:
    """The third header line: the worst findings in a few words, and the sparklines at
    the right when they fit."""
    text = Text(no_wrap=True, overflow="ellipsis")
    if data is None:
        text.append("health: checking…", style="italic")
    else:
        named: set[object] = set()
        shown = 0
        for finding in data.problems():
            where = finding.target
            if where is not None and where.pid is not None:
                if where.pid in named:  # one session, one mention
                    continue
                named.add(where.pid)
            if shown == HEADER_PROBLEMS:
                text.append(f" · +{len(data.problems()) - shown} (7)")
                break
            if shown:
                text.append(" · ")
            style = "reverse bold" if finding.status is Status.CRIT else "bold"
            text.append(finding.status.word.upper(), style=style)
            text.append(f" {one_line(finding.short or finding.check, 60)}")
            shown += 1
        if not shown:
            unknown = sum(1 for f in data.findings if f.status is Status.UNKNOWN)
            text.append("health ok")
            if unknown:
                text.append(f" ({unknown} not known yet)")
    sparks = trend.lines()
    right = "  ".join(f"{name} {line}" for name, line in sparks)
    if right and text.cell_len + 2 + len(right) <= width:
        text.append(" " * (width - text.cell_len - len(right)))
        text.append(right, style="dim")
    return text


class ServerHeader(Widget):
    """Server, version, role, connections and session counts; the worst health findings
    and the trend of the last minutes."""

    DEFAULT_CSS = """
    ServerHeader { height: 3; padding: 0 1; background: $panel; text-wrap: nowrap;
                   text-overflow: ellipsis; }
    """

    def __init__(self) -> None:
        super().__init__()
        self._snapshot: ActivitySnapshot | None = None
        self._received = 0.0
        self._health: HealthData | None = None
        self._trend = Trend()

    def on_mount(self) -> None:
        # Once a second only while the data is stale, to show its age; otherwise the header
        # changes with the data and nothing more is sent to the terminal.
        self.set_interval(1.0, self._tick)
        for name in ("paused", "interval", "lost_since", "replay"):
            self.watch(self.app, name, self._repaint, init=False)

    def _repaint(self) -> None:
        self.refresh()

    def _tick(self) -> None:
        app = _state(self)
        age = time.monotonic() - self._received
        if self._snapshot is not None and (
            app.lost_since is not None or age > max(3 * app.interval, 5.0)
        ):
            self.refresh()

    def show(self, snapshot: ActivitySnapshot | None) -> None:
        self._snapshot = snapshot
        self._received = time.monotonic()
        if snapshot is not None:
            self._trend.add(snapshot)
        self.refresh()

    def show_health(self, data: HealthData) -> None:
        self._health = data
        self.refresh()

    def render(self) -> Text:
        app = _state(self)
        age = time.monotonic() - self._received if self._snapshot else None
        text = header_text(
            self._snapshot,
            app.describe_source(),
            interval=app.interval,
            paused=app.paused,
            age=age,
            stale=app.lost_since is not None,
            replay=app.replay,
        )
        if self._snapshot is None:
            return text
        text.append("\n")
        text.append_text(health_text(self._health, self._trend, self.content_size.width))
        return text


class ConnectionBanner(Widget):
    """Says plainly when data is stale and why; hidden while all is well."""

    DEFAULT_CSS = """
    ConnectionBanner { height: auto; max-height: 3; padding: 0 1; display: none;
                       background: $error; color: $text; text-style: bold; }
    ConnectionBanner.-shown { display: block; }
    """

    def on_mount(self) -> None:
        for name in ("lost_since", "problem", "attempts"):
            self.watch(self.app, name, self._update, init=False)
        self.set_interval(1.0, self._tick)
        self._update()

    def _tick(self) -> None:
        if self.has_class("-shown"):
            self.refresh()

    def _update(self) -> None:
        self.set_class(bool(_state(self).problem), "-shown")
        self.refresh(layout=True)

    def render(self) -> Text:
        app = _state(self)
        lost = app.lost_since
        text = Text(no_wrap=False)
        if lost is not None:
            text.append(
                f"⚠ disconnected since {lost:%H:%M:%S}, retrying (attempt {app.attempts + 1})"
                " · data on screen is stale: "
            )
        else:
            text.append("⚠ last refresh failed: ")
        text.append(one_line(app.problem, 300))
        return text


class ActionBar(Widget):
    """The running action and its progress; hidden when none runs."""

    DEFAULT_CSS = """
    ActionBar { height: 1; padding: 0 1; display: none; background: $warning; color: $text; }
    ActionBar.-shown { display: block; }
    """

    def on_mount(self) -> None:
        self.watch(self.app, "action_status", self._update)

    def _update(self) -> None:
        self.set_class(bool(_state(self).action_status), "-shown")
        self.refresh(layout=True)

    def render(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append("⚙ ")
        text.append(one_line(_state(self).action_status, 300))
        text.append("  (X stops it)", style="bold")
        return text
