"""The Queries tab: pg_stat_statements as what is slow now, since a mark, or ever."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar, cast

from rich.text import Text
from textual import on
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.widgets import Static

from pgtop.collectors.statements import (
    Figures,
    Mode,
    Reading,
    Statement,
    StatementKey,
    StatementNeeds,
    StatementsSnapshot,
    StatementsUnavailable,
    is_own,
    mode_figures,
    privilege_notice,
)
from pgtop.formats import cores, count, duration, millis, rate
from pgtop.panes.base import FILTER_BINDINGS, SORT_BINDINGS, ListPane
from pgtop.text import name_text, one_line
from pgtop.widgets.keyed_table import Column, KeyedTable, Row
from pgtop.widgets.status_line import StatusLine

DEFAULT_SORT = "total"
"""Total execution time: what takes most of the server's time."""
NAME_COLUMNS = ("user", "database", "query")
"""Columns sorted alphabetically; the others are figures, sorted largest first."""
OWN_MARK = "(pgtop) "
NESTED_MARK = "↳ "
LOADING_TEXT = "…"

SORTS = (
    ("total", "total time"),
    ("mean", "mean time"),
    ("calls", "calls"),
    ("rows", "rows"),
    ("read", "shared reads"),
    ("temp", "temp writes"),
    ("hit", "shared hits"),
)
"""Sort keys offered as commands, with their names."""


def columns_for(mode: Mode) -> tuple[Column, ...]:
    """The list's columns: per second in *now*, totals in the other modes."""
    per_second = mode is Mode.NOW

    def name_text(name: str) -> str:
        return f"{name}/S" if per_second else name

    return (
        Column("user", "USER", width=10, hide_below=110),
        Column("database", "DATABASE", width=10, hide_below=130),
        Column("calls", name_text("CALLS"), width=8, align="right"),
        Column("total", "TIME/S" if per_second else "TIME", width=8, align="right"),
        Column("mean", "MEAN", width=9, align="right"),
        Column("rows", name_text("ROWS"), width=8, align="right", hide_below=80),
        Column("hit", name_text("HIT"), width=8, align="right", hide_below=120),
        Column("read", name_text("READ"), width=8, align="right", hide_below=64),
        Column("temp", name_text("TEMP"), width=8, align="right", hide_below=90),
        Column("query", "QUERY", min_width=20),
    )


def hidden_text(statement: Statement) -> str:
    who = name_text(statement.user or "a dropped role", 64)
    return f"‹{statement.entries} statements of {who} hidden: needs pg_read_all_stats›"


def query_cell(statement: Statement, text: str | None, own: bool) -> str:
    """The query column: normalized text on one line, with what kind of statement it is."""
    if statement.hidden:
        body = hidden_text(statement)
    elif text is None:
        body = LOADING_TEXT
    else:
        body = one_line(text) or "(no text)"
    if own:
        body = OWN_MARK + body
    if statement.nested:
        body = NESTED_MARK + body
    return body


def statement_row(
    statement: Statement, figures: Figures, text: str | None, own: bool, mode: Mode
) -> Row:
    """The table row of one statement in ``mode``."""
    f = figures
    if mode is Mode.NOW:
        numbers = (
            rate(f.per_second(f.calls)),
            cores(f.load),
            millis(f.mean_ms),
            rate(f.per_second(f.rows)),
            rate(f.per_second(f.shared_blks_hit)),
            rate(f.per_second(f.shared_blks_read)),
            rate(f.per_second(f.temp_blks_written)),
        )
    else:
        numbers = (
            count(f.calls),
            millis(f.exec_ms),
            millis(f.mean_ms),
            count(f.rows),
            count(f.shared_blks_hit),
            count(f.shared_blks_read),
            count(f.temp_blks_written),
        )
    user = name_text(statement.user or "", 64)
    database = name_text(statement.database or "", 64)
    query = query_cell(statement, text, own)
    cells = (user, database, *numbers, query)
    # Within one mode every row shares the span, so totals order rows as rates do.
    sort_values = (
        user,
        database,
        f.calls,
        f.exec_ms,
        f.mean_ms,
        f.rows,
        f.shared_blks_hit,
        f.shared_blks_read,
        f.temp_blks_written,
        query.casefold(),
    )
    tone = "muted" if own or statement.hidden else ""
    search = f"{user} {database} {query} {text or ''}"
    return Row(key=statement.key, cells=cells, sort_values=sort_values, tone=tone, search=search)


def span_text(mode: Mode, snapshot: StatementsSnapshot, mark: Reading | None) -> str:
    """What the figures cover, e.g. ``last 6.0s, per second``."""
    now = snapshot.collected_at
    if mode is Mode.NOW:
        if snapshot.previous is None:
            return "measuring: rates after the next reading"
        seconds = (now - snapshot.previous.collected_at).total_seconds()
        return f"last {duration(seconds)}, per second"
    if mode is Mode.MARK:
        if mark is None:
            return "no mark yet (x)"
        seconds = (now - mark.collected_at).total_seconds()
        return f"{duration(seconds)} since the mark at {mark.collected_at:%H:%M:%S} (x: new mark)"
    reset = snapshot.current.stats_reset
    return f"cumulative since the reset at {reset:%Y-%m-%d %H:%M}" if reset else "cumulative"


class QueriesPane(ListPane):
    """pg_stat_statements, one row per statement, in one of three modes."""

    TAB = "queries"
    TITLE = "Queries"
    KEY = "3"
    COLUMNS = columns_for(Mode.NOW)
    DEFAULT_SORT = DEFAULT_SORT
    DESCENDING = frozenset(c.key for c in columns_for(Mode.NOW) if c.key not in NAME_COLUMNS)
    NOUN = "statements"

    BINDINGS: ClassVar[list[BindingType]] = [
        *FILTER_BINDINGS,
        Binding("m", "next_mode", "Mode", id="mode"),
        Binding("x", "set_mark", "Mark", id="mark"),
        Binding("i", "toggle_idle", "Idle", id="toggle-idle", show=False),
        *SORT_BINDINGS,
    ]

    def __init__(self, *, lazy: bool = False) -> None:
        super().__init__(lazy=lazy)
        self.mode = Mode.NOW
        self.mark: Reading | None = None
        self.show_idle = False
        """Also list statements that did nothing in the span (now and since mark)."""
        self._data: StatementsSnapshot | None = None
        self._unavailable: StatementsUnavailable | None = None
        self._own: dict[tuple[int, str | None], bool] = {}
        self._cache: dict[StatementKey, tuple[Figures, str | None, Row]] = {}
        self._counts = (0, 0, 0)
        """Rows shown, entries in the span, idle entries hidden."""
        self._asked: frozenset[int] = frozenset()

    def compose_above(self) -> ComposeResult:
        yield Static(id="queries-notice")
        yield Static(id="queries-explain")

    def columns(self) -> tuple[Column, ...]:
        return columns_for(self.mode)

    def content_mounted(self) -> None:
        self.query_one("#queries-explain").display = False
        self.query_one("#queries-notice").display = False
        self.table.empty_text = "reading pg_stat_statements…"
        self.show_status()

    @property
    def data(self) -> StatementsSnapshot | None:
        return self._data

    # -- data in -------------------------------------------------------------------------------

    def show_data(self, data: StatementsSnapshot | StatementsUnavailable) -> None:
        if isinstance(data, StatementsUnavailable):
            self._unavailable = data
            self._data = None
            self._show_unavailable(data)
            return
        if self._unavailable is not None:
            self._unavailable = None
            self.query_one("#queries-explain").display = False
            self.table.display = True
        self.failure = ""
        self._data = data
        self.show_rows()

    def show_failure(self, reason: str) -> None:
        self.failure = reason
        self._show_notice()

    def _show_unavailable(self, problem: StatementsUnavailable) -> None:
        text = Text()
        text.append(one_line(problem.reason, 300), style="bold")
        text.append("\n\n")
        text.append(one_line(problem.remedy, 2000))
        explain = self.query_one("#queries-explain", Static)
        explain.update(text)
        explain.display = True
        self.table.display = False
        self.query_one("#queries-notice").display = False
        self.show_status()

    # -- rendering -----------------------------------------------------------------------------

    def _text(self, statement: Statement) -> str | None:
        if statement.queryid is None or self._data is None:
            return None
        return self._data.texts.get(statement.queryid)

    def _is_own(self, statement: Statement, text: str | None, user: str) -> bool:
        queryid = statement.queryid
        if queryid is None or text is None:
            return False
        key = (queryid, statement.user)
        own = self._own.get(key)
        if own is None:
            own = self._own[key] = is_own(statement, text, user)
        return own

    def rows(self) -> Iterable[Row]:
        data = self._data
        if data is None:
            return []
        figures = mode_figures(self.mode, data, self.mark)
        if figures is None:
            self._counts = (0, 0, 0)
            return []
        cache = self._cache
        fresh: dict[StatementKey, tuple[Figures, str | None, Row]] = {}
        rows: list[Row] = []
        idle = 0
        spans = self.mode is not Mode.LIFETIME
        statements = data.current.statements
        for key, figure in figures.items():
            if spans and not self.show_idle and not figure.active:
                idle += 1
                continue
            statement = statements[key]
            text = self._text(statement)
            cached = cache.get(key)
            if cached is not None and cached[0] == figure and cached[1] == text:
                row = cached[2]
            else:
                own = self._is_own(statement, text, data.user)
                row = statement_row(statement, figure, text, own, self.mode)
            fresh[key] = (figure, text, row)
            rows.append(row)
        self._cache = fresh
        self._counts = (len(rows), len(figures), idle)
        return rows

    def show_rows(self) -> None:
        super().show_rows()
        self._show_notice()
        self.view_changed()

    def empty_text(self) -> str:
        data = self._data
        table = self.table
        if data is not None and mode_figures(self.mode, data, self.mark) is None:
            if self.mode is Mode.NOW:
                return "measuring: rates appear after the next reading"
            return "no mark yet: press x to set one"
        if table.filter_text:
            return f"no statement matches '{one_line(table.filter_text, 60)}'"
        idle = self._counts[2]
        if self.mode is not Mode.LIFETIME and idle:
            return f"no statement ran in this span ({idle} idle hidden: i)"
        return "no statements recorded yet"

    def status_parts(self) -> list[str]:
        data = self._data
        parts = [f"mode {self.mode.value} (m)"]
        if data is None:
            parts.append("reading pg_stat_statements…")
            return parts
        parts.append(span_text(self.mode, data, self.mark))
        shown, total, idle = self._counts
        listed = f"{len(self.table.visible_rows)} of {shown} statements"
        if self.table.filter_text:
            listed += f" matching '{one_line(self.table.filter_text, 40)}'"
        parts.append(listed)
        if self.mode is not Mode.LIFETIME and total:
            parts.append(f"{idle} idle hidden (i)" if idle else "idle shown (i)")
        return parts

    def show_status(self) -> None:
        if self._unavailable is not None:
            self.query_one("#queries-status", StatusLine).set_text(
                "pg_stat_statements is not available"
            )
            return
        failure, self.failure = self.failure, ""  # said in the notice
        super().show_status()
        self.failure = failure

    def _show_notice(self) -> None:
        data = self._data
        lines = []
        if self.failure:
            lines.append(
                f"could not read pg_stat_statements: {one_line(self.failure, 300)} (retrying)"
            )
        if data is not None:
            notice = privilege_notice(data)
            if notice:
                lines.append(notice)
            if data.texts_problem:
                lines.append(one_line(data.texts_problem, 500))
            evicted = data.evicted if self.mode is Mode.NOW else None
            if evicted:
                lines.append(
                    f"{evicted} entries were evicted in this span (their counters are lost): "
                    "pg_stat_statements.max is too small for this workload"
                )
        notice_box = self.query_one("#queries-notice", Static)
        notice_box.update(Text("\n".join(lines)))
        notice_box.display = bool(lines)

    # -- statement texts -----------------------------------------------------------------------

    def _wanted_queryids(self) -> frozenset[int]:
        """Queryids of the rows on screen (a page either way), or of every row when filtering:
        the filter looks in the texts."""
        table = self.table
        visible = table.visible_rows
        if table.filter_text:
            chosen: Iterable[Row] = table.rows
        else:
            height = max(1, table.size.height)
            top = int(table.scroll_offset.y)
            start = max(0, min(top, table.cursor_index) - height)
            chosen = visible[start : max(top, table.cursor_index) + 2 * height]
        return frozenset(
            queryid for row in chosen if (queryid := cast("StatementKey", row.key)[2]) is not None
        )

    def needs(self) -> StatementNeeds:
        return StatementNeeds(texts=self._asked)

    def view_changed(self) -> None:
        """Texts for the rows that came on screen: asked for at once, once."""
        data = self._data
        if data is None:
            return
        missing = frozenset(q for q in self._wanted_queryids() if q not in data.texts)
        if missing and not missing <= self._asked:
            self._asked = missing
            self.state_needs(now=True)

    def filter_changed(self) -> None:
        self.show_rows()

    def forget(self) -> None:
        # A mark is a reading of the server it was set on: since-mark figures of another
        # server would be nonsense.
        self.mark = None
        self._cache.clear()
        if self.mode is Mode.MARK:
            self.mode = Mode.NOW
            self.table.set_columns(columns_for(Mode.NOW))
        super().forget()

    # -- actions -------------------------------------------------------------------------------

    def set_mode(self, mode: Mode) -> None:
        if mode is Mode.MARK and self.mark is None and self._data is not None:
            self.mark = self._data.current
        self.mode = mode
        self._cache.clear()
        self.table.set_columns(columns_for(mode))
        self.show_rows()

    def action_next_mode(self) -> None:
        self.set_mode(self.mode.next())

    def action_set_mark(self) -> None:
        data = self._data
        if data is None:
            return
        self.mark = data.current
        self.host.say(
            f"mark set at {data.collected_at:%H:%M:%S}: since-mark figures count from here",
            timeout=3,
        )
        self.set_mode(Mode.MARK)

    def action_toggle_idle(self) -> None:
        self.show_idle = not self.show_idle
        self.show_rows()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "set_mark":
            return self._data is not None
        if action == "toggle_idle":
            return self.mode is not Mode.LIFETIME
        return super().check_action(action, parameters)

    @on(KeyedTable.RowActivated, "#queries-table")
    def open_statement(self, event: KeyedTable.RowActivated) -> None:
        data = self._data
        if data is None:
            return
        key = cast("StatementKey", event.key)
        if key in data.current.statements:
            self.host.open_statement(key, data, self.mode, self.mark)

    def screen_commands(self) -> Iterable[SystemCommand]:
        for mode in Mode:
            yield SystemCommand(
                f"Queries: show {mode.value}",
                "Queries: figures per second now, since the mark, or cumulative",
                lambda mode=mode: self.set_mode(mode),
            )
        yield SystemCommand(
            "Queries: set a mark",
            "Queries: count from now on (m cycles modes)",
            self.action_set_mark,
        )
        for key, name in SORTS:
            yield SystemCommand(
                f"Sort statements by {name}",
                f"Queries: order rows by {name}",
                lambda key=key: self.sort_by(key),
            )
        yield SystemCommand(
            "Show or hide idle statements",
            "Queries: statements that did nothing in the span",
            self.action_toggle_idle,
        )
        yield SystemCommand(
            "Filter statements", "Queries: text in any column", self.action_start_filter
        )
