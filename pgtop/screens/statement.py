"""Detail of one statement: its whole text, every counter in the mode and lifetime, its plan."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Static

from pgtop.collectors.activity import WHOLE_TEXT_LIMIT
from pgtop.collectors.plans import StatementPlan, plan_obstacle
from pgtop.collectors.statements import (
    COUNTER_FIELDS,
    Counters,
    Mode,
    Reading,
    Statement,
    StatementKey,
    StatementsSnapshot,
    StatementText,
    TextsUnreadableError,
    base_for,
    counters_since,
)
from pgtop.formats import cores, duration, hit_ratio, millis, rate, size
from pgtop.panes.host import Host, ReportsFailures, host_of
from pgtop.source import PollError
from pgtop.text import name_text, one_line, visible
from pgtop.widgets.footer import KeysFooter
from pgtop.widgets.plan import plan_text

COUNTER_LABELS: tuple[tuple[str, str, str], ...] = (
    ("calls", "calls", "count"),
    ("exec_ms", "execution time", "ms"),
    ("plans", "plans", "count"),
    ("plan_ms", "planning time", "ms"),
    ("rows", "rows", "count"),
    ("shared_blks_hit", "shared blocks hit", "count"),
    ("shared_blks_read", "shared blocks read", "count"),
    ("shared_blks_dirtied", "shared blocks dirtied", "count"),
    ("shared_blks_written", "shared blocks written", "count"),
    ("local_blks_hit", "local blocks hit", "count"),
    ("local_blks_read", "local blocks read", "count"),
    ("local_blks_dirtied", "local blocks dirtied", "count"),
    ("local_blks_written", "local blocks written", "count"),
    ("temp_blks_read", "temp blocks read", "count"),
    ("temp_blks_written", "temp blocks written", "count"),
    ("shared_blk_read_ms", "shared block read time", "ms"),
    ("shared_blk_write_ms", "shared block write time", "ms"),
    ("local_blk_read_ms", "local block read time", "ms"),
    ("local_blk_write_ms", "local block write time", "ms"),
    ("temp_blk_read_ms", "temp block read time", "ms"),
    ("temp_blk_write_ms", "temp block write time", "ms"),
    ("wal_records", "WAL records", "count"),
    ("wal_fpi", "WAL full-page images", "count"),
    ("wal_bytes", "WAL bytes", "bytes"),
    ("wal_buffers_full", "WAL buffers full", "count"),
    ("jit_functions", "JIT functions", "count"),
    ("jit_generation_ms", "JIT generation time", "ms"),
    ("jit_inlining_count", "JIT inlinings", "count"),
    ("jit_inlining_ms", "JIT inlining time", "ms"),
    ("jit_optimization_count", "JIT optimizations", "count"),
    ("jit_optimization_ms", "JIT optimization time", "ms"),
    ("jit_emission_count", "JIT emissions", "count"),
    ("jit_emission_ms", "JIT emission time", "ms"),
    ("jit_deform_count", "JIT deforms", "count"),
    ("jit_deform_ms", "JIT deform time", "ms"),
    ("parallel_workers_to_launch", "parallel workers planned", "count"),
    ("parallel_workers_launched", "parallel workers launched", "count"),
)
"""Every counter of ``Counters``: (field, label, kind)."""
assert {name for name, _, _ in COUNTER_LABELS} == set(COUNTER_FIELDS)

LABEL_WIDTH = 26
VALUE_WIDTH = 16


def _value(value: float | None, kind: str) -> str:
    if value is None:
        return ""
    if kind == "ms":
        return millis(value)
    if kind == "bytes":
        return size(value)
    return f"{round(value):,}"


def _per_second(value: float | None, kind: str, seconds: float | None) -> str:
    if value is None or not seconds:
        return ""
    if kind == "ms":
        # Milliseconds of work per second of wall clock: a share of one core.
        return f"{cores(value / 1000 / seconds)} s/s"
    if kind == "bytes":
        return f"{size(value / seconds)}/s"
    return f"{rate(value / seconds)}/s"


def counters_text(
    statement: Statement,
    mode: Mode,
    span: Counters | None,
    seconds: float | None,
    restarted: bool,
) -> Text:
    """Every counter: in the mode's span (with rates) and lifetime, one per line."""
    lifetime = statement.counters
    text = Text()
    spans = mode is not Mode.LIFETIME and span is not None
    header = f"{'':<{LABEL_WIDTH}}"
    if spans:
        header += f"{mode.value:>{VALUE_WIDTH}}{'per second':>{VALUE_WIDTH}}"
    header += f"{'lifetime':>{VALUE_WIDTH}}"
    text.append(header + "\n", style="bold")
    for name, label, kind in COUNTER_LABELS:
        total = getattr(lifetime, name)
        if total is None:
            continue  # not tracked by this version of the extension
        line = f"{label:<{LABEL_WIDTH}}"
        if spans and span is not None:
            value = getattr(span, name)
            line += f"{_value(value, kind):>{VALUE_WIDTH}}"
            line += f"{_per_second(value, kind, seconds):>{VALUE_WIDTH}}"
        line += f"{_value(total, kind):>{VALUE_WIDTH}}"
        text.append(line + "\n")
    mean_span = span.exec_ms / span.calls if span is not None and span.calls else None
    mean_life = statement.mean_exec_ms
    if mean_life is None and lifetime.calls:
        mean_life = lifetime.exec_ms / lifetime.calls
    derived: list[tuple[str, str, str]] = [
        ("mean execution time", millis(mean_span), millis(mean_life)),
        ("min execution time", "", millis(statement.min_exec_ms)),
        ("max execution time", "", millis(statement.max_exec_ms)),
        ("stddev execution time", "", millis(statement.stddev_exec_ms)),
        (
            "rows per call",
            _ratio(span.rows, span.calls) if span is not None else "",
            _ratio(lifetime.rows, lifetime.calls),
        ),
        (
            "shared cache hit ratio",
            _hit_ratio(span) if span is not None else "",
            _hit_ratio(lifetime),
        ),
    ]
    for label, in_span, in_life in derived:
        if not in_span and not in_life:
            continue
        line = f"{label:<{LABEL_WIDTH}}"
        if spans:
            line += f"{in_span:>{VALUE_WIDTH}}{'':>{VALUE_WIDTH}}"
        line += f"{in_life:>{VALUE_WIDTH}}"
        text.append(line + "\n")
    if statement.stats_since is not None:
        text.append(f"{'counting since':<{LABEL_WIDTH}}{statement.stats_since:%Y-%m-%d %H:%M:%S}\n")
    if restarted and spans:
        text.append(
            "Its counters restarted in this span (a reset or an evicted entry): the figures "
            "count from the restart.\n",
            style="italic",
        )
    return text


def _ratio(a: int, b: int) -> str:
    return f"{a / b:.2f}" if b else ""


def _hit_ratio(c: Counters) -> str:
    blocks = c.shared_blks_hit + c.shared_blks_read
    return hit_ratio(c.shared_blks_hit / blocks) if blocks else ""


class StatementScreen(ReportsFailures, Screen[None]):
    """One statement in full; its counters follow each collection until closed."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "Back", id="close-statement"),
        Binding("ctrl+r", "reload", "Reload plan", id="reload-statement"),
    ]

    def __init__(
        self,
        key: StatementKey,
        snapshot: StatementsSnapshot,
        mode: Mode,
        mark: Reading | None,
    ) -> None:
        super().__init__()
        self.key = key
        self.snapshot = snapshot
        self.mode = mode
        self.mark = mark
        self.statement = statement = snapshot.current.statements[key]
        self.text = snapshot.texts.get(statement.queryid) if statement.queryid is not None else None
        self.cut = False
        """The whole text is longer than what was read (``WHOLE_TEXT_LIMIT``)."""
        self._gone = False

    @property
    def host(self) -> Host:
        return host_of(self.app)

    def compose(self) -> ComposeResult:
        s = self.statement
        if s.hidden:
            title = f"{s.entries} hidden statements of {name_text(s.user or '?', 64)}"
        else:
            title = f"Statement {s.queryid}"
        yield Static(Text(title, style="bold"), id="detail-title")
        with VerticalScroll(id="detail-body"):
            yield Static(id="statement-fields")
            yield Static(Text("Query", style="bold underline"), classes="detail-heading")
            yield Static(id="statement-query")
            yield Static(
                Text("Plan (EXPLAIN: planned, not executed)", style="bold underline"),
                classes="detail-heading",
            )
            yield Static(Text("planning…", style="italic"), id="statement-plan")
            yield Static(id="statement-counters-heading", classes="detail-heading")
            yield Static(id="statement-counters")
        yield KeysFooter()

    def on_mount(self) -> None:
        self.watch(self.app, "latest_tab_data", self._follow, init=False)
        self._show_query(self.text)
        self._show_counters()
        self.action_reload()

    def _follow(self, update: tuple[str, object] | None) -> None:
        if update is None or update[0] != "queries":
            return
        data = update[1]
        if not isinstance(data, StatementsSnapshot):
            return
        self.snapshot = data
        current = data.current.statements.get(self.key)
        if current is None:
            self._gone = True
        else:
            self._gone = False
            self.statement = current
        self._show_counters()

    def _show_fields(self) -> None:
        s = self.statement
        if s.toplevel is None:
            level = ""
        else:
            level = "top level (sent by a client)" if s.toplevel else "nested (run by a function)"
        rows = (
            ("queryid", "" if s.queryid is None else str(s.queryid)),
            ("user", s.user or "(dropped role)"),
            ("database", s.database or "(dropped database)"),
            ("level", level),
            ("entries", str(s.entries) if s.entries > 1 else ""),
            ("extension", f"pg_stat_statements {self.snapshot.extension_version}"),
        )
        text = Text()
        if self._gone:
            text.append(
                "This statement is no longer in pg_stat_statements (reset or evicted); the "
                "values below are the last ones seen.\n\n",
                style="bold reverse",
            )
        for label, value in rows:
            if not value:
                continue
            text.append(f"{label:>10}  ", style="bold")
            text.append(one_line(value, 200))
            text.append("\n")
        self.query_one("#statement-fields", Static).update(text)

    def _show_counters(self) -> None:
        self._show_fields()
        data = self.snapshot
        base_reading = base_for(self.mode, data, self.mark)
        span: Counters | None = None
        seconds: float | None = None
        restarted = False
        heading = "Counters: lifetime"
        if self.mode is not Mode.LIFETIME:
            if base_reading is None:
                heading = f"Counters: lifetime ({self.mode.value}: nothing to compare with yet)"
            else:
                base = base_reading.statements.get(self.key)
                span, restarted = counters_since(base, self.statement)
                seconds = (data.collected_at - base_reading.collected_at).total_seconds()
                heading = f"Counters: {self.mode.value} ({duration(seconds)}) and lifetime"
        self.query_one("#statement-counters-heading", Static).update(
            Text(heading, style="bold underline")
        )
        self.query_one("#statement-counters", Static).update(
            counters_text(self.statement, self.mode, span, seconds, restarted)
        )

    def _show_query(self, text: str | None) -> None:
        box = self.query_one("#statement-query", Static)
        if self.statement.hidden:
            box.update(
                Text(
                    "hidden: this role needs pg_read_all_stats (or pg_monitor) to see other "
                    "roles' statements",
                    style="italic",
                )
            )
        elif text is None:
            box.update(Text("loading…", style="italic"))
        else:
            # Wrapped in full, newlines kept; control characters made visible.
            shown = Text(visible(text) or "(no text)")
            if self.cut:
                shown.append(
                    f"\n… cut: only the first {WHOLE_TEXT_LIMIT:,} characters are read",
                    style="bold reverse",
                )
            box.update(shown)

    def action_close(self) -> None:
        self.dismiss()

    def action_reload(self) -> None:
        self.load_detail()

    @work(exclusive=True, group="statement-detail", exit_on_error=False, description="plan")
    async def load_detail(self) -> None:
        """The whole text (the list has it clipped), then the plan."""
        plan_box = self.query_one("#statement-plan", Static)
        plan_box.update(Text("planning…", style="italic"))
        statement = self.statement
        data = self.snapshot
        host = self.host
        text = self.text
        queryid = statement.queryid
        if queryid is not None:
            version = data.extension_version
            schema = data.extension_schema
            try:
                whole = await host.fetch(StatementText(queryid, version, schema))
            except (PollError, TextsUnreadableError) as exc:
                plan_box.update(Text(f"could not load: {one_line(str(exc), 300)}", style="bold"))
                return
            if whole is not None:
                text, self.cut = whole
                self.text = text
            self._show_query(text)
        if self.cut:
            plan_box.update(
                Text(
                    f"not planned: the text is longer than {WHOLE_TEXT_LIMIT:,} characters "
                    "and was cut",
                    style="italic",
                )
            )
            return
        problem = plan_obstacle(statement, text, data.database)
        if problem:
            plan_box.update(Text(f"not planned: {problem}", style="italic"))
            return
        assert text is not None
        assert statement.user is not None
        planned_text = text
        server_version = data.server_version_num
        role = statement.user
        try:
            plan = await host.fetch(StatementPlan(planned_text, server_version, role))
        except PollError as exc:
            plan_box.update(Text(f"could not plan: {one_line(str(exc), 300)}", style="bold"))
            return
        if plan.problem:
            plan_box.update(Text(f"not planned: {one_line(plan.problem, 500)}", style="italic"))
            return
        plan_box.update(plan_text(plan))
