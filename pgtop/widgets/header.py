"""The server header and the connection banner; plain text only, never markup."""

from __future__ import annotations

import time
from collections import deque
from datetime import datetime
from typing import Protocol, cast

from rich.text import Text
from textual.geometry import Region
from textual.widget import Widget

from pgtop.collectors.health import HealthData, Status
from pgtop.formats import duration, hit_ratio, rate, spark
from pgtop.model import ActivitySnapshot, PoolsSnapshot, Snapshot
from pgtop.text import name_text, one_line
from pgtop.widgets.repaint import changed_lines


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


Piece = tuple[str, str]
"""A piece of a header line: its text and its style."""


def _fit(variants: list[list[Piece]], width: int) -> Text:
    """The first of ``variants`` (most complete first) that fits ``width`` cells; the last
    one otherwise, cut with an ellipsis where it overflows."""
    for pieces in variants:
        if sum(len(part) for part, _ in pieces) <= width:
            break
    text = Text(no_wrap=True, overflow="ellipsis")
    for part, style in pieces:
        text.append(part, style=style)
    return text


def _server_line(
    snapshot: Snapshot | None,
    target: str,
    *,
    interval: float,
    paused: bool,
    age: float | None,
    stale: bool,
    width: int,
    replay: str = "",
) -> Text:
    """Where and what the server is. Narrower, it drops the refresh interval, the uptime,
    says ``PG`` for PostgreSQL, drops the clock, then shortens the connection; the role,
    PAUSED and STALE always stay."""
    if snapshot is None:
        return _fit(
            [[("pgtop ", "bold"), (name_text(target, 120), ""), ("  connecting…", "italic")]], width
        )
    role: list[Piece] = []
    uptime = ""
    if isinstance(snapshot, PoolsSnapshot):
        product = short_product = "PgBouncer"
        version = one_line(snapshot.version, 20)
    else:
        caps = snapshot.capabilities
        product, short_product = "PostgreSQL", "PG"
        version = one_line(caps.server_version.split(" ")[0], 20)
        role = [("  standby" if snapshot.counters.in_recovery else "  primary", "bold")]
        uptime = duration((snapshot.collected_at - caps.started_at).total_seconds())
    tail: list[Piece] = []
    if paused:
        tail.append(("  ⏸ PAUSED", "reverse bold"))
    stale_piece: list[Piece] = []
    if age is not None and (stale or age > max(3 * interval, 5.0)):
        stale_piece.append((f"  STALE {duration(age)}", "reverse bold"))
    clock: list[Piece] = [(f"  at {snapshot.collected_at:%H:%M:%S}", "")]
    if replay:
        # Where in the recording always stays; there is no refresh and no clock.
        tail, stale_piece, clock = [("  REPLAY", "reverse bold"), (f" {replay}", "")], [], []
        interval_shown = False
    else:
        interval_shown = True

    def line(name: str, pg: str, up: bool, every: bool, at: bool) -> list[Piece]:
        pieces: list[Piece] = [("pgtop ", "bold"), (name, ""), (f"  {pg} {version}", ""), *role]
        if up and uptime:
            pieces.append((f"  up {uptime}", ""))
        if every and interval_shown:
            pieces.append((f"  every {interval:g}s", ""))
        return pieces + tail + (clock if at else []) + stale_piece

    full = name_text(target, 120)
    variants = [
        line(full, product, True, True, True),
        line(full, product, True, False, True),
        line(full, short_product, True, False, True),
        line(full, short_product, False, False, True),
        line(full, short_product, False, False, False),
    ]
    rest = sum(len(part) for part, _ in variants[-1]) - len(full)
    room = width - rest
    if room < len(full):
        # The connection gives way last, cut in its middle: host and database both show.
        variants.append(line(_middle(full, max(room, 8)), short_product, False, False, False))
    return _fit(variants, width)


def _middle(text: str, width: int) -> str:
    """``text`` cut to ``width`` cells in its middle.

    >>> _middle("postgres@db-primary-01.example.com:5432/shop", 24)
    'postgres@db-…m:5432/shop'
    """
    if len(text) <= width:
        return text
    head = (width - 1) // 2 + (width - 1) % 2
    return text[:head] + "…" + text[len(text) - (width - 1 - head) :]


def _counts_line(snapshot: ActivitySnapshot, width: int) -> Text:
    """What the sessions are doing. Narrower, it drops the cache hit ratio, shortens the
    labels, then drops tps and the idle count; connections and waiting always stay."""
    caps = snapshot.capabilities
    used = snapshot.client_connections
    limit = caps.max_connections
    full = used >= limit - caps.reserved_connections
    head: list[Piece] = [(f"conns {used}/{limit}", "reverse bold" if full else "bold")]
    if full:
        head.append((" FULL", "reverse bold"))
    idle_in_tx = snapshot.count("idle in transaction") + snapshot.count(
        "idle in transaction (aborted)"
    )
    counts = (
        ("active", "act", snapshot.count("active"), True),
        ("idle", "idle", snapshot.count("idle"), False),
        ("idle in tx", "idle tx", idle_in_tx, True),
        ("waiting", "wait", snapshot.waiting, True),
    )
    tps = [] if snapshot.tps is None else [(f"  tps {rate(snapshot.tps)}", "")]
    hit = (
        [] if snapshot.cache_hit is None else [(f"  cache hit {hit_ratio(snapshot.cache_hit)}", "")]
    )

    def line(short: bool, all_counts: bool) -> list[Piece]:
        pieces = list(head)
        gap = " " if short else "  "
        for label, abbreviation, count, kept in counts:
            if kept or all_counts:
                pieces += [(f"{gap}{abbreviation if short else label} ", ""), (str(count), "bold")]
        return pieces

    return _fit(
        [
            line(False, True) + tps + hit,
            line(False, True) + tps,
            line(True, True) + tps,
            line(True, True),
            line(True, False),
        ],
        width,
    )


def header_text(
    snapshot: Snapshot | None,
    target: str,
    *,
    interval: float,
    paused: bool,
    age: float | None,
    stale: bool = False,
    width: int = 200,
    replay: str = "",
) -> Text:
    """Two lines that fit ``width`` cells: where and what the server is, then what its
    sessions are doing. Nothing wraps: each line gives up its least needed parts first.

    In a replay (``replay``: where in the recording), the recorded time instead of the
    refresh and the clock."""
    text = _server_line(
        snapshot,
        target,
        interval=interval,
        paused=paused,
        age=age,
        stale=stale,
        width=width,
        replay=replay,
    )
    if isinstance(snapshot, PoolsSnapshot):
        text.append("\n")
        return _pooler_text(text, snapshot)
    if snapshot is not None:
        text.append("\n")
        text.append_text(_counts_line(snapshot, width))
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


def _pooler_text(text: Text, snapshot: PoolsSnapshot) -> Text:
    """The second line on a PgBouncer: its clients, its servers, its traffic."""
    waiting = snapshot.clients_waiting
    text.append(f"pools {len(snapshot.pools)}", style="bold")
    text.append("  clients active ")
    text.append(str(snapshot.clients_active), style="bold")
    text.append("  waiting ")
    text.append(str(waiting), style="reverse bold" if waiting else "bold")
    if waiting:
        text.append(f" longest {duration(snapshot.longest_wait_s)}", style="reverse bold")
    for label, figure in (
        ("servers active", snapshot.servers_active),
        ("idle", snapshot.servers_idle),
        ("used", snapshot.servers_used),
    ):
        text.append(f"  {label} ")
        text.append(str(figure), style="bold")
    if snapshot.traffic:
        xacts = sum(t.xact_per_s for t in snapshot.traffic)
        queries = sum(t.query_per_s for t in snapshot.traffic)
        # Bytes in and out are in a pool's detail: the line ends here at 120 columns.
        text.append(f"  tps {rate(xacts)}  qps {rate(queries)}")
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
        self._snapshot: Snapshot | None = None
        self._received = 0.0
        self._health: HealthData | None = None
        self._trend = Trend()
        self._text: tuple[int, Text] | None = None
        """The text last asked to be painted (what `render` shows), and the width it is
        laid out for."""
        self._lines: list[Text] = []
        """Its lines: only what differs from them is repainted."""

    def on_mount(self) -> None:
        # Once a second only while the data is stale, to show its age; otherwise the header
        # changes with the data and nothing more is sent to the terminal.
        self.set_interval(1.0, self._tick)
        for name in ("paused", "interval", "lost_since", "replay"):
            self.watch(self.app, name, self._repaint, init=False)

    def _repaint(self) -> None:
        """Repaint the cells that changed (the clock, a count), not the whole header."""
        shown = self._text
        width = self.content_size.width
        self._text = (width, self._header())
        lines = list(self._text[1].split("\n", allow_blank=True))
        old, self._lines = self._lines, lines
        if shown is None or shown[0] != width:
            self.refresh()
            return
        for y, start, end in changed_lines(old, lines):
            self.refresh(Region(start, y, end - start, 1))

    def _tick(self) -> None:
        app = _state(self)
        age = time.monotonic() - self._received
        if self._snapshot is not None and (
            app.lost_since is not None or age > max(3 * app.interval, 5.0)
        ):
            self._repaint()

    def show(self, snapshot: Snapshot | None) -> None:
        self._snapshot = snapshot
        self._received = time.monotonic()
        if isinstance(snapshot, ActivitySnapshot):
            self._trend.add(snapshot)
        self._repaint()

    def forget(self) -> None:
        """Another server is shown: nothing of the one before stays."""
        self._snapshot = None
        self._health = None
        self._trend = Trend()
        self._text = None  # laid out again from nothing
        self.refresh()

    def show_health(self, data: HealthData) -> None:
        self._health = data
        self._repaint()

    def render(self) -> Text:
        width = self.content_size.width
        if self._text is None or self._text[0] != width:
            # Resized (or not painted yet): laid out again for the width it has now.
            self._text = (width, self._header())
            self._lines = list(self._text[1].split("\n", allow_blank=True))
        return self._text[1]

    def _header(self) -> Text:
        app = _state(self)
        age = time.monotonic() - self._received if self._snapshot else None
        text = header_text(
            self._snapshot,
            app.describe_source(),
            interval=app.interval,
            paused=app.paused,
            age=age,
            stale=app.lost_since is not None,
            width=self.content_size.width,
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
