"""The server header and the connection banner; plain text only, never markup."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Protocol, cast

from rich.text import Text
from textual.widget import Widget

from pgtop.formats import duration, hit_ratio, rate
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
) -> Text:
    """Two lines: where and what the server is, then what its sessions are doing."""
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


class ServerHeader(Widget):
    """Server, version, role, connections and session counts."""

    DEFAULT_CSS = """
    ServerHeader { height: 2; padding: 0 1; background: $panel; }
    """

    def __init__(self) -> None:
        super().__init__()
        self._snapshot: ActivitySnapshot | None = None
        self._received = 0.0

    def on_mount(self) -> None:
        # Once a second only while the data is stale, to show its age; otherwise the header
        # changes with the data and nothing more is sent to the terminal.
        self.set_interval(1.0, self._tick)
        for name in ("paused", "interval", "lost_since"):
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
        self.refresh()

    def render(self) -> Text:
        app = _state(self)
        age = time.monotonic() - self._received if self._snapshot else None
        return header_text(
            self._snapshot,
            app.describe_source(),
            interval=app.interval,
            paused=app.paused,
            age=age,
            stale=app.lost_since is not None,
        )


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
