"""Detail of one session: every field, the full query wrapped, how far along its command is,
its statement's statistics, its plan on demand, whom it blocks and waits for, its locks."""

from __future__ import annotations

import contextlib
import time
from dataclasses import replace
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option, OptionDoesNotExist

from pgtop.collectors.activity import WHOLE_TEXT_LIMIT, SessionDetail
from pgtop.collectors.locks import Related, related
from pgtop.collectors.plans import StatementPlan, session_plan_obstacle
from pgtop.collectors.session import ENTRY_SECONDS, Figures, Progress, SessionFigures
from pgtop.collectors.statements import Statement
from pgtop.formats import against_mean, done_of, duration, millis
from pgtop.model import ActivitySnapshot, Backend
from pgtop.panes.activity import HIDDEN_TEXT, state_label
from pgtop.panes.host import Host, ReportsFailures, host_of
from pgtop.screens.copying import shown_text
from pgtop.source import PollError
from pgtop.text import name_text, one_line, visible
from pgtop.widgets.footer import KeysFooter
from pgtop.widgets.plan import plan_text


def fields_text(backend: Backend, snapshot: ActivitySnapshot | None, gone: bool) -> Text:
    """Every field of the backend as ``label  value`` lines, values as plain text."""
    now = snapshot.collected_at if snapshot else None

    def age(value: Any) -> str:
        if value is None:
            return ""
        stamp = f"{value:%Y-%m-%d %H:%M:%S%z}"
        return f"{stamp} ({duration((now - value).total_seconds())} ago)" if now else stamp

    wait = ":".join(filter(None, (backend.wait_event_type, backend.wait_event)))
    client = backend.client_addr or ""
    if backend.client_hostname:
        client = f"{client} ({backend.client_hostname})"
    if backend.client_port is not None:
        client = f"{client} port {backend.client_port}"
    rows = (
        ("pid", str(backend.pid)),
        ("database", backend.database or ""),
        ("user", backend.user or ""),
        ("application", backend.application_name),
        ("client", client.strip()),
        ("backend type", backend.backend_type),
        ("state", backend.state or state_label(backend)),
        ("wait event", wait),
        ("blocked by", ", ".join(map(str, backend.blocked_by))),
        ("backend start", age(backend.backend_start)),
        ("transaction start", age(backend.xact_start)),
        ("query start", age(backend.query_start)),
        ("state change", age(backend.state_change)),
        ("backend xid", backend.backend_xid or ""),
        ("backend xmin", backend.backend_xmin or ""),
        ("parallel leader", str(backend.leader_pid or "")),
        ("query id", "" if backend.query_id is None else str(backend.query_id)),
    )
    text = Text()
    if gone:
        text.append(
            "This session has ended; the values below are the last ones seen.\n\n",
            style="bold reverse",
        )
    for label, value in rows:
        text.append(f"{label:>18}  ", style="bold")
        text.append(one_line(value, 500))
        text.append("\n")
    return text


def _lock_target(lock: dict[str, Any]) -> str:
    target = lock["relation"] or lock["transactionid"] or lock["virtualxid"]
    if target is None and lock["objid"] is not None:
        target = f"object {lock['classid']}/{lock['objid']}"
    return one_line(str(target or ""), 200)


def locks_summary(locks: list[dict[str, Any]]) -> str:
    """The locks in one line, for the title: what the session waits for, how many it holds.

    >>> locks_summary([{"granted": True}, {"granted": True}])
    'holds 2 locks'
    """
    held = sum(1 for lock in locks if lock["granted"])
    parts = [
        f"WAITS for {lock['mode']} on {lock['locktype']} {_lock_target(lock)}"
        for lock in locks
        if not lock["granted"]
    ]
    parts.append(f"holds {held} lock{'' if held == 1 else 's'}" if held else "holds no lock")
    return " · ".join(parts)


def locks_text(locks: list[dict[str, Any]]) -> Text:
    text = Text()
    if not locks:
        text.append("no locks held or awaited", style="italic")
        return text
    for lock in locks:
        status = "HOLDS  " if lock["granted"] else "WAITS  "
        text.append(status, style="bold" if lock["granted"] else "bold reverse")
        text.append(f"{lock['mode']:<24} {lock['locktype']:<14} ")
        text.append(_lock_target(lock))
        if lock.get("waitstart") is not None:
            text.append(f"  since {lock['waitstart']:%H:%M:%S}")
        text.append("\n")
    text.rstrip()
    return text


class SessionScreen(ReportsFailures, Screen[None]):
    """One backend in full; stays live until closed. What one opens it for comes first,
    within an 80x24 terminal: the title sums up the locks, then the query, its locks, and
    the session's fields last."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("e", "explain", "Plan", id="explain-session"),
        Binding("escape,q", "close", "Back", id="close-detail"),
        Binding("ctrl+r", "reload", "Reload", id="reload-detail"),
        Binding("y", "copy_detail", "Copy", id="copy-detail", show=False),
    ]

    def __init__(self, backend: Backend) -> None:
        super().__init__()
        self.backend = backend
        self._gone = False
        self._related: Related | None = None
        self._figures: Figures | None = None
        self._entry_read: tuple[float, int | None] = (0.0, None)
        """When the pg_stat_statements entry was last read (monotonic), for which query id."""
        self._figures_loading = False
        self._query: str | None = None
        """The whole query text as last read (up to ``WHOLE_TEXT_LIMIT`` and one more)."""

    @property
    def host(self) -> Host:
        return host_of(self.app)

    def compose(self) -> ComposeResult:
        title = f"Backend {self.backend.pid}"
        yield Static(Text(title, style="bold"), id="detail-title")
        with VerticalScroll(id="detail-body"):
            yield Static(Text("Query", style="bold underline"), classes="detail-heading")
            yield Static(id="detail-query")
            yield Static(id="detail-progress", classes="detail-heading")
            yield Static(Text("Statistics", style="bold underline"), classes="detail-heading")
            yield Static(Text("loading…", style="italic"), id="detail-statistics")
            yield Static(id="detail-related-heading", classes="detail-heading")
            yield OptionList(id="detail-related")
            yield Static(id="detail-plan", classes="detail-heading")
            yield Static(Text("Locks", style="bold underline"), classes="detail-heading")
            yield Static(Text("loading…", style="italic"), id="detail-locks")
            yield Static(Text("Session", style="bold underline"), classes="detail-heading")
            yield Static(id="detail-fields")
        yield KeysFooter()

    def on_mount(self) -> None:
        for hidden in ("#detail-progress", "#detail-related-heading", "#detail-related"):
            self.query_one(hidden).display = False
        self.query_one("#detail-plan").display = False
        self.watch(self.app, "snapshot", self._follow, init=True)
        self.action_reload()

    def _follow(self, snapshot: ActivitySnapshot | None) -> None:
        if snapshot is not None:
            current = next((b for b in snapshot.backends if b.pid == self.backend.pid), None)
            if current is not None and current.backend_start == self.backend.backend_start:
                changed = current.query != self.backend.query
                self.backend = current
                if changed:
                    self.action_reload()
            else:
                self._gone = True
        self.query_one("#detail-fields", Static).update(
            fields_text(self.backend, snapshot, self._gone)
        )
        if self.backend.query_hidden:
            self.query_one("#detail-query", Static).update(Text(HIDDEN_TEXT, style="italic"))
        if snapshot is not None:
            self._show_related(snapshot)
            # Not under another detail, and not while the last read is still going.
            if not self._gone and self.is_current and not self._figures_loading:
                self._figures_loading = True
                self.load_figures(snapshot)

    def action_close(self) -> None:
        self.dismiss()

    def action_copy_detail(self) -> None:
        self.host.copy_text(shown_text(self), f"the detail of {self.backend.pid}")

    def action_reload(self) -> None:
        self.load_detail()

    @work(exclusive=True, group="detail", exit_on_error=False, description="load backend detail")
    async def load_detail(self) -> None:
        query_box = self.query_one("#detail-query", Static)
        locks_box = self.query_one("#detail-locks", Static)
        try:
            query, locks = await self.host.fetch(SessionDetail(self.backend))
        except PollError as exc:
            locks_box.update(Text(f"could not load: {one_line(str(exc), 300)}", style="bold"))
            if not self.backend.query_hidden:
                query_box.update(Text(visible(self.backend.query)))
            return
        if query is None:
            self._gone = True
            query = self.backend.query
        self._query = query
        if not self.backend.query_hidden:
            # Wrapped in full, newlines kept; control characters made visible.
            shown = Text(visible(query[:WHOLE_TEXT_LIMIT]) or "(no query yet)")
            if len(query) > WHOLE_TEXT_LIMIT:
                shown.append(
                    f"\n… cut: only the first {WHOLE_TEXT_LIMIT:,} characters are read",
                    style="bold reverse",
                )
            query_box.update(shown)
        locks_box.update(locks_text(locks))
        title = Text(f"Backend {self.backend.pid}", style="bold", no_wrap=True, overflow="ellipsis")
        title.append(f" · {locks_summary(locks)}", style="")
        self.query_one("#detail-title", Static).update(title)

    # -- progress, statistics, whom it blocks, plan -----------------------------------------

    @work(group="detail-figures", exit_on_error=False, description="progress")
    async def load_figures(self, snapshot: ActivitySnapshot) -> None:
        """Progress, read again on each refresh; the pg_stat_statements entry, when the
        statement changed or at most every ``ENTRY_SECONDS``."""
        try:
            await self._load_figures(snapshot)
        finally:
            self._figures_loading = False

    async def _load_figures(self, snapshot: ActivitySnapshot) -> None:
        box = self.query_one("#detail-statistics", Static)
        caps = snapshot.capabilities
        backend = self.backend
        last = self._figures
        read_at, query_id = self._entry_read
        entry = (
            last is None
            or query_id != backend.query_id
            or time.monotonic() - read_at >= ENTRY_SECONDS
        )
        try:
            figures = await self.host.fetch(SessionFigures(backend, caps, entry))
        except PollError as exc:
            box.update(Text(f"could not load: {one_line(str(exc), 300)}", style="italic"))
            return
        if entry:
            self._entry_read = (time.monotonic(), backend.query_id)
        elif last is not None:
            figures = replace(figures, statement=last.statement, statement_note=last.statement_note)
        self._figures = figures
        progress = self.query_one("#detail-progress", Static)
        progress.display = bool(figures.progress)
        if figures.progress:
            progress.update(progress_text(figures.progress))
        box.update(statistics_text(figures, backend, snapshot))

    def _show_related(self, snapshot: ActivitySnapshot) -> None:
        found = related(snapshot.backends, self.backend.pid)
        options = self.query_one("#detail-related", OptionList)
        by_pid = {b.pid: b for b in snapshot.backends}
        if found == self._related:
            # The same sessions: their lines (state, age) are brought up to date in place.
            for label, pid in related_rows(found):
                line = related_line(label, by_pid.get(pid), snapshot)
                options.replace_option_prompt(str(pid), line)
            return
        self._related = found
        heading = self.query_one("#detail-related-heading", Static)
        shown = bool(found.waits_for or found.blocks)
        heading.display = options.display = shown
        if not shown:
            return
        heading.update(related_heading(found))
        highlighted = options.highlighted_option
        options.clear_options()
        options.add_options(
            Option(related_line(label, by_pid.get(pid), snapshot), id=str(pid))
            for label, pid in related_rows(found)
        )
        if highlighted is not None and highlighted.id is not None:
            with contextlib.suppress(OptionDoesNotExist):
                options.highlighted = options.get_option_index(highlighted.id)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        """Open the detail of the session chosen among those it blocks or waits for."""
        event.stop()
        pid = int(event.option.id or 0)
        snapshot = self.app.snapshot  # type: ignore[attr-defined]
        backends = snapshot.backends if isinstance(snapshot, ActivitySnapshot) else ()
        target = next((b for b in backends if b.pid == pid), None)
        if target is None:
            self.host.say(f"session {pid} is not in the latest refresh (it has ended)")
            return
        self.host.open_session(target)

    def action_explain(self) -> None:
        self.explain_query()

    @work(exclusive=True, group="detail-plan", exit_on_error=False, description="plan")
    async def explain_query(self) -> None:
        """The plan of the session's statement, made as its role (see ``plans.explain``)."""
        box = self.query_one("#detail-plan", Static)
        box.display = True
        heading = Text("Plan (EXPLAIN: planned, not executed)\n", style="bold underline")
        box.update(heading + Text("planning…", style="italic"))
        caps = self.host.capabilities
        query = self._query
        if caps is None:
            problem = "not connected yet"
        else:
            problem = session_plan_obstacle(self.backend, query, caps.database)
        if problem or caps is None or query is None:
            box.update(heading + Text(f"not planned: {problem}", style="italic"))
            return
        assert self.backend.user is not None
        request = StatementPlan(query, caps.server_version_num, self.backend.user)
        try:
            plan = await self.host.fetch(request)
        except PollError as exc:
            box.update(heading + Text(f"could not plan: {one_line(str(exc), 300)}", style="bold"))
            return
        if plan.problem:
            problem = one_line(plan.problem, 500)
            box.update(heading + Text(f"not planned: {problem}", style="italic"))
            return
        box.update(heading + plan_text(plan, "the role that runs it"))
        box.scroll_visible()


def progress_text(progress: tuple[Progress, ...]) -> Text:
    """``Progress``, then each command: phase, relation, and its figures, headline first."""
    text = Text("Progress", style="bold underline")
    for item in progress:
        text.append("\n")
        text.append(one_line(item.command, 60), style="bold")
        if item.relation:
            text.append(f" {name_text(item.relation, 120)}")
        if item.phase:
            text.append(f" · {one_line(item.phase, 120)}")
        for figure in item.figures:
            text.append(f"\n  {figure.label} {done_of(figure.done, figure.total, figure.unit)}")
    return text


def statistics_text(figures: Figures, backend: Backend, snapshot: ActivitySnapshot) -> Text:
    """The statement's pg_stat_statements entry, and how this run compares with its mean."""
    statement = figures.statement
    if statement is None:
        return Text(one_line(figures.statement_note, 300), style="italic")
    text = Text(entry_line(statement))
    if backend.state == "active" and backend.query_start is not None:
        elapsed = (snapshot.collected_at - backend.query_start).total_seconds()
        mean = statement.mean_exec_ms
        if mean is None and statement.counters.calls:
            mean = statement.counters.exec_ms / statement.counters.calls
        if mean is not None:
            text.append("\n" + against_mean(elapsed, mean), style="bold")
    else:
        text.append(f"\nnot running now ({backend.state or 'state unknown'})", style="italic")
    return text


def entry_line(statement: Statement) -> str:
    """Calls, mean and max time, rows of a pg_stat_statements entry, in one line."""
    c = statement.counters
    per_call = f" ({c.rows / c.calls:,.1f} per call)" if c.calls else ""
    return (
        f"calls {c.calls:,} · mean {millis(statement.mean_exec_ms)} · max "
        f"{millis(statement.max_exec_ms)} · rows {c.rows:,}{per_call}"
    )


def related_heading(found: Related) -> Text:
    """What the list below says: how many it waits for and blocks, directly and in total."""
    parts = []
    if found.waits_for:
        parts.append(f"waits for {len(found.waits_for)}")
    if found.blocks:
        parts.append(f"blocks {len(found.blocks)} directly, {found.blocks_total} in total")
    text = Text("Blocking", style="bold underline")
    text.append(f"  {', '.join(parts)} (Tab, Enter: open one)", style="italic")
    return text


def related_rows(found: Related) -> list[tuple[str, int]]:
    """(what it is to this session, pid) for each session it waits for or blocks."""
    rows = [("waits for", pid) for pid in found.waits_for]
    rows += [(f"behind, via {via}", pid) for pid, via in found.waits_behind]
    rows += [("blocks", pid) for pid in found.blocks]
    rows += [(f"blocks via {via}", pid) for pid, via in found.blocks_through]
    return rows


def related_line(label: str, backend: Backend | None, snapshot: ActivitySnapshot) -> Text:
    """One selectable line: how it is related, pid, user, state and age, its query."""
    text = Text(f"{label:<16} ", style="bold", no_wrap=True, overflow="ellipsis")
    if backend is None:
        text.append("(not in the latest refresh)", style="italic")
        return text
    text.append(f"{backend.pid:>7} ", style="bold")
    text.append(f"{one_line(backend.user or '', 16):<12} ")
    since = backend.xact_start or backend.query_start
    age = duration((snapshot.collected_at - since).total_seconds()) if since else ""
    text.append(f"{one_line(backend.state or state_label(backend), 20):<19} {age:>6}  ")
    text.append(HIDDEN_TEXT if backend.query_hidden else one_line(backend.query, 200))
    return text
