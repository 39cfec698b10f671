"""The Servers tab (0), shown when pgtop watches several servers: one row per server with its
light figures and the state of pgtop's connection to it. Enter makes a server the one every
other tab shows; ``a`` adds the standbys a primary streams to."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.binding import Binding, BindingType

from pgtop.collectors.health import Status
from pgtop.formats import duration, rate
from pgtop.panes.base import FILTER_BINDINGS, SORT_BINDINGS, ListPane
from pgtop.text import name_text, one_line
from pgtop.widgets.keyed_table import Column, KeyedTable, Row

if TYPE_CHECKING:
    from pgtop.collectors.servers import ServerRow

COLUMNS = (
    Column("name", "NAME", width=20),
    Column("host", "HOST", width=16, hide_below=100),
    Column("role", "ROLE", width=8),
    Column("upstream", "UPSTREAM", width=22, hide_below=120),
    Column("version", "VERSION", width=7, hide_below=110),
    Column("connections", "CONN", width=9, align="right"),
    Column("active", "ACT", width=4, align="right"),
    Column("waiting", "WAIT", width=4, align="right"),
    Column("tps", "TPS", width=6, align="right", hide_below=90),
    Column("lag", "LAG", width=6, align="right", hide_below=120),
    Column("health", "HEALTH", width=24, hide_below=130),
    Column("status", "STATUS", min_width=16),
)
"""Name, role, connections and pgtop's own connection state stay on a narrow terminal."""


@dataclass(frozen=True, slots=True)
class ServersData:
    """Every server's row, in the order given."""

    rows: tuple[ServerRow, ...]


def health_text(row: ServerRow) -> str:
    finding = row.finding
    if finding is None:
        return ""
    if finding.status < Status.WARN:  # checks not known yet are no finding
        return "ok"
    return f"{finding.status.word.upper()} {one_line(finding.short or finding.summary, 60)}"


def server_row(row: ServerRow) -> Row:
    known = row.figures
    # What a server that does not answer had is not shown as if it were now: only what
    # does not change (role, upstream, version) stays.
    figures = known if row.ok else None
    mark = "● " if row.in_view else "  "
    upstream = known.upstream if known and known.upstream else ""
    cells = (
        mark + name_text(row.name, 40),
        name_text(f"{row.host}:{row.port}" if row.port else row.host, 60),
        row.role,
        name_text(upstream, 60),
        "" if known is None else one_line(known.version, 10),
        "" if figures is None else f"{figures.connections}/{figures.max_connections}",
        "" if figures is None else str(figures.active),
        "" if figures is None else str(figures.waiting),
        "" if figures is None else rate(figures.tps),
        "" if figures is None or figures.lag_s is None else duration(figures.lag_s),
        health_text(row) if row.ok else "",
        one_line(row.status + (" · read-only" if row.read_only else ""), 200),
    )
    sort_values = (
        row.name,
        row.host,
        row.role,
        upstream,
        None if known is None else known.version,
        None if figures is None else figures.connections,
        None if figures is None else figures.active,
        None if figures is None else figures.waiting,
        None if figures is None else figures.tps,
        None if figures is None else figures.lag_s,
        None if row.finding is None else int(row.finding.status),
        row.status,
    )
    tone = ""
    if not row.ok:
        tone = "error"
    elif row.finding is not None and row.finding.status >= Status.WARN:
        tone = "warning"
    return Row(key=row.name, cells=cells, sort_values=sort_values, tone=tone)


class ServersPane(ListPane):
    """Every server watched, one per row; Enter shows it in every tab."""

    TAB = "servers"
    TITLE = "Servers"
    KEY = "0"
    COLUMNS = COLUMNS
    DESCENDING = frozenset({"connections", "active", "waiting", "tps", "lag", "health"})
    NOUN = "servers"

    BINDINGS: ClassVar[list[BindingType]] = [
        *FILTER_BINDINGS,
        *SORT_BINDINGS,
        Binding("a", "add_standbys", "Add standbys", id="add-standbys"),
    ]

    def __init__(self, *, lazy: bool = False) -> None:
        super().__init__(lazy=lazy)
        self._data: ServersData | None = None

    def show_data(self, data: ServersData) -> None:
        self._data = data
        self.show_rows()

    def rows(self) -> Iterable[Row]:
        return [] if self._data is None else [server_row(row) for row in self._data.rows]

    def status_parts(self) -> list[str]:
        parts = [self.count_text()]
        if self._data is not None:
            down = sum(1 for row in self._data.rows if not row.ok)
            if down:
                parts.append(f"{down} not answering")
            # The whole reason of the server under the cursor: its row's column cuts it.
            key = self.table.cursor_key
            chosen = next((row for row in self._data.rows if row.name == key), None)
            if chosen is not None and not chosen.ok:
                parts.append(f"{name_text(chosen.name, 40)}: {one_line(chosen.status, 200)}")
                return parts
        parts.append("Enter: show in every tab · a: add standbys")
        return parts

    def view_changed(self) -> None:
        self.show_status()

    @on(KeyedTable.RowActivated, "#servers-table")
    def choose_server(self, event: KeyedTable.RowActivated) -> None:
        if isinstance(event.key, str):
            self.host.switch_server(event.key)

    def action_add_standbys(self) -> None:
        key = self.table.cursor_key
        if isinstance(key, str):
            self.host.add_standbys(key)
