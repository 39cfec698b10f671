"""The Activity tab: one row per backend, sorted, filtered, cursor kept by pid; or one row
per group of client sessions (by application, user, client address or database), and the
sessions of one group."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from typing import ClassVar

from textual import on
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.widgets import Input

from pgtop.collectors.connections import (
    GROUPINGS,
    GroupField,
    GroupKey,
    SessionGroup,
    group_key,
    session_groups,
)
from pgtop.formats import duration, percent
from pgtop.model import ActivitySnapshot, Backend
from pgtop.panes.actions import COPY_BINDING, SESSION_ACTION_BINDINGS, SessionActions
from pgtop.panes.base import FILTER_BINDINGS, SORT_BINDINGS, ListPane
from pgtop.text import name_text, one_line
from pgtop.widgets.keyed_table import Column, KeyedTable, Row

HIDDEN_TEXT = "‹hidden: this role needs pg_read_all_stats to see other roles' queries›"

TAG_MARK = "✔"
"""In the tag column of a tagged session, right of its pid (the column shows while any
session is tagged)."""

COLUMNS = (
    Column("pid", "PID", width=7, align="right"),
    Column("tag", "", width=1),
    Column("database", "DATABASE", width=12, hide_below=140),
    Column("user", "USER", width=10, hide_below=90),
    Column("application", "APPLICATION", width=12, hide_below=100),
    Column("client", "CLIENT", width=15, hide_below=160),
    Column("type", "TYPE", width=14),
    Column("state", "STATE", width=10),
    Column("wait", "WAIT", width=18, hide_below=96),
    Column("xact_age", "TX AGE", width=8, align="right"),
    Column("query_age", "RUNTIME", width=9, align="right"),
    Column("blocked_by", "BLOCKED BY", width=10),
    Column("query", "QUERY", min_width=20),
)
COLUMN_KEYS = tuple(column.key for column in COLUMNS)
DEFAULT_SORT = "xact_age"
"""Long transactions hold locks and the xmin horizon: they are where incidents start."""

GROUP_NAMES: dict[GroupField, tuple[str, str, str]] = {
    "application_name": ("APPLICATION", "application", "applications"),
    "user": ("USER", "user", "users"),
    "client_addr": ("CLIENT", "client address", "client addresses"),
    "database": ("DATABASE", "database", "databases"),
}
"""Each grouping's column header, and what a group is (singular, plural)."""
GROUP_FIGURES = (
    Column("sessions", "SESSIONS", width=10, align="right"),
    Column("active", "ACTIVE", width=6, align="right"),
    Column("idle", "IDLE", width=5, align="right"),
    Column("idle_in_tx", "IDLE TX", width=7, align="right"),
    Column("waiting", "WAITING", width=7, align="right"),
    Column("oldest_idle", "IDLE AGE", width=8, align="right"),
    Column("oldest_xact", "TX AGE", width=8, align="right"),
    Column("slots", "SLOTS", width=6, align="right"),
)
"""A group's figures; its name takes the width left (at least 12 cells at 80 columns)."""
GROUP_SORT = "sessions"
"""Groups read best largest first: who holds the slots."""
LOCAL = "local"
"""The client of a session over a Unix socket (it has no address)."""


def group_columns(by: GroupField) -> tuple[Column, ...]:
    return (Column("group", GROUP_NAMES[by][0], min_width=12), *GROUP_FIGURES)


def group_label(by: GroupField, value: str | None) -> str:
    """A group's name as shown (a client address of a Unix socket is ``local``)."""
    if value is None:
        return LOCAL if by == "client_addr" else ""
    return value


def group_row(by: GroupField, group: SessionGroup) -> Row:
    """The table row of one group of sessions."""
    name = group_label(by, group.key[0])
    cells = (
        name_text(name, 64),
        str(group.total),
        str(group.active),
        str(group.idle),
        str(group.idle_in_transaction),
        str(group.waiting),
        duration(group.oldest_idle_s),
        duration(group.oldest_xact_s),
        percent(group.share),
    )
    sort_values = (
        name,
        group.total,
        group.active,
        group.idle,
        group.idle_in_transaction,
        group.waiting,
        group.oldest_idle_s,
        group.oldest_xact_s,
        group.share,
    )
    if group.waiting:
        tone = "warning"
    elif group.idle == group.total:
        tone = "muted"
    else:
        tone = ""
    return Row(key=("group", *group.key), cells=cells, sort_values=sort_values, tone=tone)


_STATE_LABELS = {
    "idle in transaction": "idle in tx",
    "idle in transaction (aborted)": "aborted tx",
    "fastpath function call": "fastpath",
}


def state_label(backend: Backend) -> str:
    if backend.query_hidden and backend.state is None:
        return "hidden"
    if backend.state is None:
        return ""
    return _STATE_LABELS.get(backend.state, backend.state)


def is_tagged(tags: dict[int, datetime | None], backend: Backend) -> bool:
    """Whether ``backend`` is the session tagged under its pid (a pid reused by a new
    session is not). A session of another role may show no start time: it is tagged only
    when its pid is."""
    pid = backend.pid
    return pid in tags and tags[pid] == backend.backend_start


def backend_row(
    backend: Backend, now: datetime, blocking: int, tagged: bool = False
) -> tuple[Row, bool]:
    """The table row of one backend, and whether it changes with time alone.

    Args:
        backend: the backend.
        now: the server clock at the poll; ages are measured from it.
        blocking: how many backends this one blocks directly.
        tagged: the session is tagged (for an action on many).
    """
    xact_age = (now - backend.xact_start).total_seconds() if backend.xact_start else None
    query_age = (
        (now - backend.query_start).total_seconds()
        if backend.busy and backend.query_start
        else None
    )
    if backend.blocked_by:
        locks = ",".join(map(str, backend.blocked_by))
    elif blocking:
        locks = f"▲ blocks {blocking}"
    else:
        locks = ""
    wait = ":".join(filter(None, (backend.wait_event_type, backend.wait_event)))
    query = HIDDEN_TEXT if backend.query_hidden else one_line(backend.query)
    client = backend.client_addr or backend.client_hostname or ""
    if not client and backend.is_client:
        client = "local"
    state = state_label(backend)
    cells = (
        str(backend.pid),
        TAG_MARK if tagged else "",
        name_text(backend.database, 64),
        name_text(backend.user, 64),
        name_text(backend.application_name, 64),
        name_text(client, 64),
        name_text(backend.backend_type, 64),
        state,
        wait,
        duration(xact_age),
        duration(query_age),
        locks,
        query,
    )
    sort_values = (
        backend.pid,
        tagged,
        backend.database or "",
        backend.user or "",
        backend.application_name,
        client,
        backend.backend_type,
        state,
        wait,
        xact_age,
        query_age,
        (len(backend.blocked_by), blocking) if backend.blocked_by or blocking else None,
        query,
    )
    if blocking:
        tone = "error"
    elif backend.blocked_by:
        tone = "warning"
    elif backend.state in ("idle in transaction", "idle in transaction (aborted)"):
        tone = "warning" if xact_age is not None and xact_age > 10 else ""
    elif backend.state == "idle" or not backend.is_client:
        tone = "muted"
    else:
        tone = ""
    search = f"{' '.join(cells[:-1])} {backend.query}"
    row = Row(key=backend.pid, cells=cells, sort_values=sort_values, tone=tone, search=search)
    return row, xact_age is not None or query_age is not None


AGE_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
AGE_PLACEHOLDER = "older than: seconds, or 90s, 5m, 2h (Enter applies, Escape clears)"


def parse_age(text: str) -> float | None:
    """Seconds from what was typed at the age prompt: ``30``, ``90s``, ``5m``, ``1.5h``;
    None for nothing typed.

    >>> parse_age("30"), parse_age(" 5m "), parse_age("1.5h"), parse_age("")
    (30.0, 300.0, 5400.0, None)

    Raises:
        ValueError: not a duration (the message says what is expected).
    """
    text = text.strip().lower()
    if not text:
        return None
    unit = AGE_UNITS.get(text[-1])
    number = text[:-1] if unit is not None else text
    try:
        value = float(number) * (unit or 1.0)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise ValueError(
            f"'{one_line(text, 40)}' is not a duration: a number of seconds, or 90s, 5m, 2h"
        )
    return value


def tag_refusal(backend: Backend) -> str | None:
    """Why this session cannot be tagged, or None."""
    if not backend.is_client:
        return "only client sessions are tagged"
    if backend.backend_start is None:
        return "the server hides this session's identity from this role"
    return None


class ActivityPane(SessionActions, ListPane):
    """Every backend but pgtop's own, one per row."""

    TAB = "activity"
    TITLE = "Activity"
    KEY = "1"
    COLUMNS = COLUMNS
    DEFAULT_SORT = DEFAULT_SORT
    DESCENDING = frozenset({"xact_age", "query_age", "blocked_by", *(c.key for c in GROUP_FIGURES)})
    """Ages, lock counts and a group's figures read best largest first; names
    alphabetically."""
    NOUN = "sessions"

    BINDINGS: ClassVar[list[BindingType]] = [
        # Most needed first: a narrow footer cuts the last ones.
        *SESSION_ACTION_BINDINGS,
        *FILTER_BINDINGS,
        Binding("i", "toggle_idle", "Idle", id="toggle-idle"),
        Binding("b", "toggle_background", "Background", id="toggle-background"),
        Binding("a", "cycle_grouping", "Group", id="group-sessions", show=False),
        *SORT_BINDINGS,
        Binding("t", "tag", "Tag", id="tag-session", show=False),
        Binding("T", "tag_shown", "Tag shown", id="tag-shown", show=False),
        Binding("u", "clear_tags", "Untag all", id="clear-tags", show=False),
        # As "/" (priority): the keys typed right after it go to the prompt.
        Binding("o", "start_age_filter", "Older than", id="age-filter", show=False, priority=True),
        COPY_BINDING,
    ]

    def __init__(self, *, lazy: bool = False) -> None:
        super().__init__(lazy=lazy)
        self.show_idle = False
        self.show_background = False
        self.grouping: GroupField | None = None
        """What the client sessions are grouped by (None: one row per session)."""
        self.only: tuple[GroupField, GroupKey] | None = None
        """The group whose sessions alone are listed (Enter on a group), if any."""
        self._session_sort: tuple[str | None, bool] = (DEFAULT_SORT, True)
        """The sessions' sort, kept while groups are shown."""
        self._snapshot: ActivitySnapshot | None = None
        self._cache: dict[int, tuple[Backend, int, bool, Row]] = {}
        self._hidden = (0, 0)
        """Idle sessions and background processes left out of the rows."""
        self._groups = 0
        """Client sessions in the groups shown."""
        self.tags: dict[int, datetime | None] = {}
        """Tagged sessions: pid -> backend_start (a pid reused by a new session is not)."""
        self.min_age: float | None = None
        """Only sessions whose transaction (or query) is older than this, in seconds."""

    def content_mounted(self) -> None:
        self._hide_columns()

    def compose_below(self) -> ComposeResult:
        yield Input(placeholder=AGE_PLACEHOLDER, id="activity-age", classes="filter")

    @property
    def age_box(self) -> Input:
        return self.query_one("#activity-age", Input)

    def _hide_columns(self) -> None:
        # The type column only tells rows apart when background processes are listed; the
        # tag column shows while a session is tagged.
        hidden = set() if self.show_background else {"type"}
        if not self.tags:
            hidden.add("tag")
        self.table.set_hidden_columns(hidden)

    def columns(self) -> tuple[Column, ...]:
        return COLUMNS if self.grouping is None else group_columns(self.grouping)

    def show_activity(self, snapshot: ActivitySnapshot | None) -> None:
        """Apply a snapshot; unchanged rows are reused, not rebuilt."""
        self._snapshot = snapshot
        if snapshot is not None:
            if self.tags:
                self._drop_ended_tags(snapshot)
            self.show_rows()

    def _drop_ended_tags(self, snapshot: ActivitySnapshot) -> None:
        """Forget the tags of sessions that ended (a pid now used by another session,
        with another backend_start, is not tagged)."""
        started = {backend.pid: backend.backend_start for backend in snapshot.backends}
        self.tags = {
            pid: at for pid, at in self.tags.items() if pid in started and started[pid] == at
        }
        if not self.tags:
            self._hide_columns()

    def rows(self) -> Iterable[Row]:
        snapshot = self._snapshot
        if snapshot is None:
            return []
        if self.grouping is not None:
            return self._group_rows(snapshot, self.grouping)
        return self._session_rows(snapshot)

    def _group_rows(self, snapshot: ActivitySnapshot, by: GroupField) -> list[Row]:
        groups = session_groups(snapshot, (by,))
        self._groups = sum(group.total for group in groups)
        return [group_row(by, group) for group in groups]

    def _session_rows(self, snapshot: ActivitySnapshot) -> list[Row]:
        now = snapshot.collected_at
        blocking: dict[int, int] = {}
        for backend in snapshot.backends:
            for pid in backend.blocked_by:
                blocking[pid] = blocking.get(pid, 0) + 1
        cache = self._cache
        fresh: dict[int, tuple[Backend, int, bool, Row]] = {}
        rows: list[Row] = []
        hidden_idle = hidden_background = 0
        only = self.only
        tags = self.tags
        min_age = self.min_age
        show_idle, show_background = self.show_idle, self.show_background
        for backend in snapshot.backends:
            # Thousands of sessions on every refresh: the tests in order of how many they
            # leave out, and the fields read directly.
            if backend.backend_type != "client backend":
                if only is not None:
                    continue
                if not show_background:
                    hidden_background += 1
                    continue
            elif only is not None and group_key(backend, (only[0],)) != only[1]:
                continue
            if not show_idle and backend.state == "idle":
                hidden_idle += 1
                continue
            if min_age is not None:
                age = backend.age(now)
                if age is None or age <= min_age:
                    continue
            pid = backend.pid
            tagged = bool(tags) and is_tagged(tags, backend)
            blocks = blocking.get(pid, 0) if blocking else 0
            cached = cache.get(pid)
            # The collector keeps the same Backend object for an unchanged row.
            if (
                cached is not None
                and cached[0] is backend
                and cached[1] == blocks
                and cached[2] == tagged
            ):
                row = cached[3]
                fresh[pid] = cached
            else:
                row, ages = backend_row(backend, now, blocks, tagged)
                if not ages:
                    fresh[pid] = (backend, blocks, tagged, row)
            rows.append(row)
        self._cache = fresh
        self._hidden = (hidden_idle, hidden_background)
        return rows

    def empty_text(self) -> str:
        older = f" older than {duration(self.min_age)}" if self.min_age is not None else ""
        if self.table.filter_text:
            what = "group" if self.grouping is not None else "session"
            return f"no {what}{older} matches '{one_line(self.table.filter_text, 60)}'"
        if older and self.grouping is None:
            return f"no session{older}"
        return "no sessions to show"

    def count_text(self) -> str:
        if self.grouping is None:
            return super().count_text()
        table = self.table
        _, singular, plural = GROUP_NAMES[self.grouping]
        head = f"{len(table.visible_rows)} of {len(table.rows)} {plural}"
        if table.filter_text:
            head += f" matching '{one_line(table.filter_text, 40)}'"
        following = GROUPINGS.index(self.grouping) + 1
        then = (
            f"by {GROUP_NAMES[GROUPINGS[following]][1]}"
            if following < len(GROUPINGS)
            else "sessions"
        )
        slots = self._snapshot.capabilities.max_connections if self._snapshot else 0
        return (
            f"{head} · {self._groups} client sessions of {slots} slots · grouped by "
            f"{singular} (a: {then}, Enter: its sessions)"
        )

    def status_parts(self) -> list[str]:
        if self.grouping is not None:
            return [self.count_text()]
        hidden_idle, hidden_background = self._hidden
        parts = [self.count_text()]
        if self.tags:
            parts.append(f"{len(self.tags)} tagged: C K act on them (u: untag)")
        if self.min_age is not None:
            parts.append(f"older than {duration(self.min_age)} (o; Escape clears)")
        if self.only is not None:
            by, key = self.only
            name = group_label(by, key[0])
            parts.append(f"only {GROUP_NAMES[by][1]} '{one_line(name, 40)}' (Escape: all)")
        parts.append("idle shown (i)" if self.show_idle else f"{hidden_idle} idle hidden (i)")
        parts.append(
            "background shown (b)"
            if self.show_background
            else f"{hidden_background} background hidden (b)"
        )
        return parts

    def _reshow(self) -> None:
        self._cache.clear()
        self.show_activity(self._snapshot)

    def filter_changed(self) -> None:
        self.show_activity(self._snapshot)

    # -- actions -----------------------------------------------------------------------------

    def action_toggle_idle(self) -> None:
        self.show_idle = not self.show_idle
        self._reshow()

    def action_cycle_grouping(self) -> None:
        """Group the sessions by the next field, or list them one by one again."""
        table = self.table
        if self.grouping is None:
            self._session_sort = (table.sort_column, table.sort_reverse)
            self.only = None
            following: GroupField | None = GROUPINGS[0]
        else:
            index = GROUPINGS.index(self.grouping) + 1
            following = GROUPINGS[index] if index < len(GROUPINGS) else None
        self._show_grouping(following)

    def _show_grouping(self, grouping: GroupField | None) -> None:
        table = self.table
        before, self.grouping = self.grouping, grouping
        self._cache.clear()
        table.set_rows(())
        table.set_columns(self.columns())
        if grouping is None:
            table.sort_by(*self._session_sort)
        elif before is None:
            table.sort_by(GROUP_SORT, reverse=True)
        self.show_activity(self._snapshot)
        self.view_changed()
        self.refresh_bindings()

    def show_group(self, by: GroupField, key: GroupKey) -> None:
        """List exactly the client sessions of one group, idle ones included: what is
        done to the rows listed is done to that group."""
        self.only = (by, key)
        self.show_idle = True
        box = self.filter_box
        if box.value:
            box.value = ""
        box.remove_class("-shown")
        self.table.set_filter("")
        self._show_grouping(None)
        self.table.action_cursor_first()

    def action_clear_filter(self) -> None:
        age_box = self.age_box
        if self.min_age is not None or age_box.has_class("-shown"):
            # Escape clears the age filter with the text filter.
            age_box.value = ""
            age_box.remove_class("-shown")
            if self.min_age is not None:
                self.min_age = None
                self._reshow()
            super().action_clear_filter()
            return
        if self.only is not None and not self.table.filter_text and not self.filter_box.value:
            self.only = None
            self.filter_box.remove_class("-shown")
            self.table.focus()
            self._reshow()
            return
        super().action_clear_filter()

    def action_toggle_background(self) -> None:
        self.show_background = not self.show_background
        self._hide_columns()
        self._reshow()

    # -- the age filter ----------------------------------------------------------------------

    def action_start_age_filter(self) -> None:
        box = self.age_box
        box.add_class("-shown")
        self.screen.set_focus(box)

    @on(Input.Submitted, "#activity-age")
    def apply_age_filter(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            self.min_age = parse_age(event.value)
        except ValueError as exc:
            self.host.say(str(exc), title="Older than", severity="warning", timeout=8)
            return
        if self.min_age is None:
            event.input.remove_class("-shown")
        self.table.focus()
        self._reshow()

    # -- tags --------------------------------------------------------------------------------

    def action_tag(self) -> None:
        """Tag or untag the session under the cursor, then move to the next row."""
        backend = self.selected_backend()
        if backend is None:
            return
        if backend.pid in self.tags:
            del self.tags[backend.pid]
        else:
            refusal = tag_refusal(backend)
            if refusal is not None:
                self.host.say(f"pid {backend.pid} not tagged: {refusal}", severity="warning")
                return
            assert backend.backend_start is not None
            self.tags[backend.pid] = backend.backend_start
        self._tags_changed()
        self.table.action_cursor_down()

    def action_tag_shown(self) -> None:
        """Tag every session the filters show (text and age)."""
        snapshot = self._snapshot
        if snapshot is None:
            return
        shown = {row.key for row in self.table.visible_rows}
        skipped = 0
        for backend in snapshot.backends:
            if backend.pid not in shown:
                continue
            if tag_refusal(backend) is not None or backend.backend_start is None:
                skipped += 1
                continue
            self.tags[backend.pid] = backend.backend_start
        if skipped:
            self.host.say(
                f"{skipped} shown not tagged: only client sessions whose identity is visible are",
                severity="warning",
            )
        self._tags_changed()

    def action_clear_tags(self) -> None:
        self.tags.clear()
        self._tags_changed()

    def _tags_changed(self) -> None:
        self._hide_columns()
        self.show_activity(self._snapshot)
        self.refresh_bindings()

    def tagged_backends(self) -> list[Backend]:
        """The tagged sessions, as the latest snapshot has them."""
        snapshot = self._snapshot
        if snapshot is None or not self.tags:
            return []
        return [b for b in snapshot.backends if is_tagged(self.tags, b)]

    def selected_backend(self) -> Backend | None:
        """The backend under the cursor, from the latest snapshot."""
        key = self.table.cursor_key
        if not isinstance(key, int) or self._snapshot is None:
            return None
        return next((b for b in self._snapshot.backends if b.pid == key), None)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "signal":
            return self.check_signal()
        if action == "copy_query":
            return self.grouping is None and self.selected_backend() is not None
        if action in ("tag", "tag_shown", "clear_tags"):
            # Tags are for actions: none in read-only mode nor in a recording (there ``t``
            # is the player's).
            host = self.host
            if not host.actions_offered() or host.replay or self.grouping is not None:
                return False
            if action == "clear_tags":
                return bool(self.tags) or None
            return True
        if action == "start_age_filter":
            return self.grouping is None and not (
                self.age_box.has_focus or self.filter_box.has_focus
            )
        if action in ("toggle_idle", "toggle_background"):
            # Groups count every client session, idle or not.
            return self.grouping is None
        if action == "clear_filter" and self.only is not None:
            return True
        return super().check_action(action, parameters)

    @on(KeyedTable.RowActivated, "#activity-table")
    def open_backend(self, event: KeyedTable.RowActivated) -> None:
        snapshot = self._snapshot
        if snapshot is None:
            return
        if self.grouping is not None:
            key = event.key
            if isinstance(key, tuple) and key[:1] == ("group",):
                self.show_group(self.grouping, key[1:])
            return
        backend = next((b for b in snapshot.backends if b.pid == event.key), None)
        if backend is not None:
            self.host.open_session(backend)

    def screen_commands(self) -> Iterable[SystemCommand]:
        yield from super().screen_commands()
        yield SystemCommand("Show or hide idle sessions", "Activity", self.action_toggle_idle)
        yield SystemCommand(
            "Show or hide background processes", "Activity", self.action_toggle_background
        )
        yield SystemCommand(
            "Group sessions (application, user, client, database, none)",
            "Activity: one row per group, largest first",
            self.action_cycle_grouping,
        )
        if self.grouping is None:
            yield SystemCommand(
                "Only sessions older than…",
                "Activity: transaction (or query) older than N seconds",
                self.action_start_age_filter,
            )
            if self.selected_backend() is not None:
                yield SystemCommand(
                    "Copy the selected session's query",
                    "Activity: to the clipboard (OSC 52) and the copy file",
                    self.action_copy_query,
                )
            if self.host.actions_offered():
                yield SystemCommand(
                    "Tag every session shown",
                    "Activity: C and K then act on the tagged sessions",
                    self.action_tag_shown,
                )
                if self.tags:
                    yield SystemCommand("Untag all sessions", "Activity", self.action_clear_tags)
        yield from self.session_commands("Activity")
