"""The Queries tab: pg_stat_statements as what is slow now, since a mark, or ever."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.widgets import Input, Static, TabPane

from pgtop.model import ActivitySnapshot
from pgtop.screens.failures import ReportsFailures
from pgtop.source import PollError
from pgtop.statements import (
    TEXT_CACHE_SIZE,
    Figures,
    Mode,
    Reading,
    Statement,
    StatementKey,
    StatementsSnapshot,
    StatementsUnavailable,
    cores,
    count,
    is_own,
    millis,
    mode_figures,
    privilege_notice,
    rate,
)
from pgtop.text import duration, name_text, one_line
from pgtop.widgets.keyed_table import Column, KeyedTable, Row

if TYPE_CHECKING:
    from pgtop.app import PgTopApp

TAB = "queries"
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


COLUMN_KEYS = tuple(column.key for column in columns_for(Mode.NOW))


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


class StatementsPane(ReportsFailures, TabPane):
    """pg_stat_statements, one row per statement, in one of three modes."""

    BINDINGS: ClassVar[list[BindingType]] = [
        # A priority binding runs while the key is dispatched, before the keys typed
        # after it: they go to the filter however fast they come.
        Binding("slash", "start_filter", "Filter", id="statements-filter", priority=True),
        Binding("m", "next_mode", "Mode", id="statements-mode"),
        Binding("x", "set_mark", "Mark", id="statements-mark"),
        Binding("i", "toggle_idle", "Idle", id="statements-toggle-idle", show=False),
        Binding("greater_than_sign", "sort_step(1)", "Sort →", id="statements-sort-next"),
        Binding(
            "less_than_sign", "sort_step(-1)", "Sort ←", id="statements-sort-previous", show=False
        ),
        Binding("r", "reverse_sort", "Reverse", id="statements-sort-reverse", show=False),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="statements-clear"),
    ]

    def __init__(self, title: str, *, id: str) -> None:
        super().__init__(title, id=id)
        self.mode = Mode.NOW
        self.mark: Reading | None = None
        self.show_idle = False
        """Also list statements that did nothing in the span (now and since mark)."""
        self._data: StatementsSnapshot | None = None
        self._unavailable: StatementsUnavailable | None = None
        self._failure = ""
        self._texts: dict[int, str] = {}
        self._own: dict[tuple[int, str | None], bool] = {}
        self._cache: dict[StatementKey, tuple[Figures, str | None, Row]] = {}
        self._asking: set[int] = set()

    @property
    def pgtop(self) -> PgTopApp:
        return cast("PgTopApp", self.app)

    def compose(self) -> ComposeResult:
        yield Static(id="statements-status", classes="pane-status")
        yield Static(id="statements-notice")
        yield Static(id="statements-explain")
        table = KeyedTable(columns_for(self.mode), id="statements-table")
        table.sort_by(DEFAULT_SORT, reverse=True)
        table.empty_text = "reading pg_stat_statements…"
        yield table
        yield Input(
            placeholder="filter: text in any column (Enter keeps it, Escape clears)",
            id="statements-filter",
            classes="filter",
        )

    def on_mount(self) -> None:
        self.query_one("#statements-explain").display = False
        self.query_one("#statements-notice").display = False
        self._show_status(0, 0, 0)

    @property
    def table(self) -> KeyedTable:
        return self.query_one("#statements-table", KeyedTable)

    @property
    def data(self) -> StatementsSnapshot | None:
        return self._data

    # -- data in -------------------------------------------------------------------------------

    def show(self, snapshot: ActivitySnapshot | None) -> None:
        """The Activity snapshot: this tab has its own data (see ``show_data``)."""
        return None

    def show_data(self, data: object) -> None:
        if isinstance(data, StatementsUnavailable):
            self._unavailable = data
            self._data = None
            self._show_unavailable(data)
            return
        if not isinstance(data, StatementsSnapshot):
            return
        if self._unavailable is not None:
            self._unavailable = None
            self.query_one("#statements-explain").display = False
            self.table.display = True
        self._failure = ""
        self._data = data
        if len(self._texts) > TEXT_CACHE_SIZE:
            self._texts.clear()
            self._own.clear()
        self._texts.update(data.texts)
        self._show_rows()

    def show_failure(self, reason: str) -> None:
        self._failure = f"could not read pg_stat_statements: {one_line(reason, 300)} (retrying)"
        self._show_notice()

    def _show_unavailable(self, problem: StatementsUnavailable) -> None:
        text = Text()
        text.append(one_line(problem.reason, 300), style="bold")
        text.append("\n\n")
        text.append(one_line(problem.remedy, 2000))
        explain = self.query_one("#statements-explain", Static)
        explain.update(text)
        explain.display = True
        self.table.display = False
        self.query_one("#statements-status", Static).update("pg_stat_statements is not available")
        self.query_one("#statements-notice").display = False

    # -- rendering -----------------------------------------------------------------------------

    def _text(self, statement: Statement) -> str | None:
        if statement.queryid is None:
            return None
        return self._texts.get(statement.queryid)

    def _is_own(self, statement: Statement, text: str | None, user: str) -> bool:
        queryid = statement.queryid
        if queryid is None or text is None:
            return False
        key = (queryid, statement.user)
        own = self._own.get(key)
        if own is None:
            own = self._own[key] = is_own(statement, text, user)
        return own

    def _show_rows(self) -> None:
        data = self._data
        if data is None:
            return
        table = self.table
        figures = mode_figures(self.mode, data, self.mark)
        if figures is None:
            table.set_rows(())
            table.empty_text = (
                "measuring: rates appear after the next reading"
                if self.mode is Mode.NOW
                else "no mark yet: press x to set one"
            )
            self._show_status(0, 0, 0)
            self._show_notice()
            return
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
        table.set_rows(rows)
        if table.filter_text:
            table.empty_text = f"no statement matches '{one_line(table.filter_text, 60)}'"
        elif spans and idle:
            table.empty_text = f"no statement ran in this span ({idle} idle hidden: i)"
        else:
            table.empty_text = "no statements recorded yet"
        self._show_status(len(rows), len(figures), idle)
        self._show_notice()
        self._ask_for_texts()

    def _show_status(self, shown: int, total: int, idle: int) -> None:
        data = self._data
        table = self.table
        parts = [f"mode {self.mode.value} (m)"]
        if data is None:
            parts.append("reading pg_stat_statements…")
            self.query_one("#statements-status", Static).update(Text(" · ".join(parts)))
            return
        parts.append(span_text(self.mode, data, self.mark))
        listed = f"{len(table.visible_rows)} of {shown} statements"
        if table.filter_text:
            listed += f" matching '{one_line(table.filter_text, 40)}'"
        parts.append(listed)
        if self.mode is not Mode.LIFETIME and total:
            parts.append(f"{idle} idle hidden (i)" if idle else "idle shown (i)")
        if table.sort_column:
            label = next(c.label for c in table.columns if c.key == table.sort_column)
            parts.append(f"sort {label.lower()} {'▼' if table.sort_reverse else '▲'} (< > r)")
        self.query_one("#statements-status", Static).update(Text(" · ".join(parts)))

    def _show_notice(self) -> None:
        data = self._data
        lines = []
        if self._failure:
            lines.append(self._failure)
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
        notice_box = self.query_one("#statements-notice", Static)
        notice_box.update(Text("\n".join(lines)))
        notice_box.display = bool(lines)

    # -- statement texts -----------------------------------------------------------------------

    def _wanted_queryids(self) -> list[int]:
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
        return [
            queryid for row in chosen if (queryid := cast("StatementKey", row.key)[2]) is not None
        ]

    def _ask_for_texts(self) -> None:
        data = self._data
        if data is None or data.text_source is None:
            return
        wanted = self._wanted_queryids()
        data.text_source.wanted = frozenset(wanted)
        missing = [q for q in wanted if q not in self._texts and q not in self._asking]
        if missing:
            self._asking.update(missing)
            self.fetch_texts(data, missing)

    @work(group="statement-texts", exit_on_error=False, description="fetch statement texts")
    async def fetch_texts(self, data: StatementsSnapshot, queryids: list[int]) -> None:
        source = data.text_source
        assert source is not None
        try:
            texts = await self.pgtop.source.run(lambda conn: source.fetch_texts(conn, queryids))
        except PollError:
            return  # asked again on the next render
        finally:
            self._asking.difference_update(queryids)
        self._texts.update(texts)
        if self._data is not None:
            self._show_rows()

    @on(KeyedTable.CursorMoved, "#statements-table")
    def texts_for_new_rows(self) -> None:
        self._ask_for_texts()

    # -- actions -------------------------------------------------------------------------------

    def set_mode(self, mode: Mode) -> None:
        if mode is Mode.MARK and self.mark is None and self._data is not None:
            self.mark = self._data.current
        self.mode = mode
        self._cache.clear()
        self.table.set_columns(columns_for(mode))
        self._show_rows()
        if self._data is None:
            self._show_status(0, 0, 0)

    def action_next_mode(self) -> None:
        self.set_mode(self.mode.next())

    def action_set_mark(self) -> None:
        data = self._data
        if data is None:
            return
        self.mark = data.current
        self.notify(
            f"mark set at {data.collected_at:%H:%M:%S}: since-mark figures count from here",
            timeout=3,
            markup=False,
        )
        self.set_mode(Mode.MARK)

    def action_toggle_idle(self) -> None:
        self.show_idle = not self.show_idle
        self._show_rows()

    def action_sort_step(self, step: int) -> None:
        table = self.table
        current = COLUMN_KEYS.index(table.sort_column) if table.sort_column else 0
        self.sort_by(COLUMN_KEYS[(current + step) % len(COLUMN_KEYS)])

    def sort_by(self, key: str) -> None:
        self.table.sort_by(key, reverse=key not in NAME_COLUMNS)
        self._show_rows()

    def action_reverse_sort(self) -> None:
        table = self.table
        table.sort_by(table.sort_column, reverse=not table.sort_reverse)
        self._show_rows()

    def action_start_filter(self) -> None:
        box = self.query_one("#statements-filter", Input)
        box.add_class("-shown")
        # At once, not after the next refresh: keys typed right after "/" (a paste, a
        # laggy link) are already queued and belong to the filter.
        self.screen.set_focus(box)

    def action_clear_filter(self) -> None:
        box = self.query_one("#statements-filter", Input)
        if box.value:
            box.value = ""
        box.remove_class("-shown")
        self.table.focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "start_filter":
            # In the filter, "/" is text.
            return not self.query_one("#statements-filter").has_focus
        if action == "clear_filter":
            return bool(self.table.filter_text) or self.query_one("#statements-filter").has_focus
        if action == "set_mark":
            return self._data is not None
        if action == "toggle_idle":
            return self.mode is not Mode.LIFETIME
        return True

    @on(Input.Changed, "#statements-filter")
    def apply_filter(self, event: Input.Changed) -> None:
        self.table.set_filter(event.value)
        self._show_rows()

    @on(Input.Submitted, "#statements-filter")
    def keep_filter(self, event: Input.Submitted) -> None:
        if not event.value:
            event.input.remove_class("-shown")
        self.table.focus()

    @on(KeyedTable.RowActivated, "#statements-table")
    def open_statement(self, event: KeyedTable.RowActivated) -> None:
        data = self._data
        if data is None:
            return
        key = cast("StatementKey", event.key)
        if key not in data.current.statements:
            return
        from pgtop.screens.statement import StatementScreen

        statement = data.current.statements[key]
        self.app.push_screen(
            StatementScreen(key, data, self.mode, self.mark, self._text(statement))
        )

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
