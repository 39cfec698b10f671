"""The confirm dialogs: one names its target in full, shows the exact SQL and its lock; the
other lists every session an action on many would signal, and those it would not, and why.

"No" has the focus. Only an explicit yes runs the action: ``y`` or the Yes button. A ``y``
typed before the dialog was on screen long enough to be read (its key event is older than
that moment, however late it is processed on a busy machine) is ignored; a no is always
taken.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from datetime import datetime
from typing import ClassVar

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from pgtop.actions import CHECKPOINT_HELPS, ActionPlan, GroupTarget, SessionAction
from pgtop.formats import duration, size
from pgtop.model import CheckpointTarget, RelationTarget, SessionTarget, SlotTarget
from pgtop.panes.activity import state_label
from pgtop.text import name_text, one_line, visible
from pgtop.widgets.keyed_table import fit_cell

ARM_SECONDS = 0.4
"""A yes typed before the dialog had been visible this long is not taken as an answer."""

TITLES = {
    "cancel": "Cancel the query of this session?",
    "terminate": "Terminate this session?",
    "analyze": "ANALYZE this table?",
    "vacuum": "VACUUM (ANALYZE) this table?",
    "reindex": "REINDEX?",
    "drop_invalid_index": "Drop the invalid index left behind?",
    "drop_slot": "Drop this replication slot?",
    "checkpoint": "Run a CHECKPOINT now?",
}


def target_text(plan: ActionPlan) -> Text:
    """The target, every value as plain text with control characters visible."""
    target = plan.target
    text = Text()

    def line(label: str, value: str) -> None:
        text.append(f"{label:>14}  ", style="bold")
        text.append(value)
        text.append("\n")

    if isinstance(target, SessionTarget):
        line("pid", str(target.pid))
        line("user", name_text(target.user, 80))
        line("application", name_text(target.application_name, 80))
        line("database", name_text(target.database, 80))
        line("type", name_text(target.backend_type, 40))
        line("state", one_line(target.state, 40))
        line("backend start", f"{target.backend_start:%Y-%m-%d %H:%M:%S%z}")
        if target.query_start is not None:
            line("query start", f"{target.query_start:%Y-%m-%d %H:%M:%S%z}")
        line("query", one_line(target.query, 300))
    elif isinstance(target, RelationTarget):
        line(target.kind, name_text(target.qualified, 200))
        if target.table_name and target.kind == "index":
            line("table", name_text(target.table_name, 200))
        if target.database is not None:
            line("database", name_text(target.database, 80))
        if target.owner is not None:
            line("owner", name_text(target.owner, 80))
        if target.size_bytes is not None:
            line("size", size(target.size_bytes))
        line("oid", str(target.oid))
    elif isinstance(target, SlotTarget):
        line("slot", name_text(target.name, 200))
        kind = target.kind
        if kind == "logical":
            plugin, database = name_text(target.plugin, 60), name_text(target.database, 60)
            kind = f"logical ({plugin}, database {database})"
        line("type", kind)
        line("WAL kept", size(target.retained_bytes) or "?")
        line("its consumer", target.consumer_loss)
    elif isinstance(target, CheckpointTarget):
        line("server", "a standby: this is a restartpoint" if target.in_recovery else "primary")
        if target.wal_dir_bytes is not None:
            line("pg_wal", size(target.wal_dir_bytes))
        if target.last_checkpoint_time is not None:
            line("last one", f"{target.last_checkpoint_time:%Y-%m-%d %H:%M:%S%z}")
        line("when it helps", CHECKPOINT_HELPS)
    return text


class AnswerDialog(ModalScreen[bool]):
    """Yes or no; "No" has the focus and a yes counts only once the dialog could be read."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,n", "answer(False)", "No", id="confirm-no"),
        Binding("y", "answer(True)", "Yes", id="confirm-yes"),  # handled in on_key
    ]

    def __init__(self, server: str = "") -> None:
        super().__init__()
        self.server = server
        """The server it runs on, named when several are watched ("": the only one)."""
        self._armed_at = math.inf
        """When a yes starts to count: set once the dialog has been drawn."""

    def compose_server(self) -> ComposeResult:
        """The server it runs on, when several are watched."""
        if self.server:
            server_text = Text("on server  ", style="bold")
            server_text.append(name_text(self.server, 200))
            yield Static(server_text, id="confirm-server")

    def compose_buttons(self, *, compact: bool = False) -> ComposeResult:
        with Horizontal(id="confirm-buttons"):
            yield Button("No", id="no", variant="primary", compact=compact)
            yield Button("Yes", id="yes", variant="error", compact=compact)

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()
        self.call_after_refresh(self._arm)

    def _arm(self) -> None:
        self._armed_at = time.monotonic() + ARM_SECONDS

    def _armed(self) -> bool:
        return time.monotonic() >= self._armed_at

    def on_key(self, event: events.Key) -> None:
        # Judged by when the key was typed, not when it is handled: keys typed ahead wait in
        # a queue and may be handled after the dialog is up.
        if event.key == "y":
            event.stop()
            event.prevent_default()
            if event.time >= self._armed_at:
                self.dismiss(True)

    def action_answer(self, yes: bool) -> None:
        if yes and not self._armed():
            return
        self.dismiss(yes)

    @on(Button.Pressed)
    def answer_button(self, event: Button.Pressed) -> None:
        event.stop()
        if not self._armed():
            return
        self.dismiss(event.button.id == "yes")


class ConfirmDialog(AnswerDialog):
    """Yes or no, with everything needed to decide."""

    def __init__(self, plan: ActionPlan, *, second: bool = False, server: str = "") -> None:
        super().__init__(server)
        self.plan = plan
        self.second = second

    def compose(self) -> ComposeResult:
        plan = self.plan
        with VerticalScroll(id="confirm-box"):
            title = TITLES.get(plan.action, plan.action)
            if self.second:
                title = "Are you sure? " + one_line(plan.warning, 200)
            yield Static(Text(title, style="bold"), id="confirm-title")
            yield from self.compose_server()
            yield Static(target_text(plan), id="confirm-target")
            sql_text = Text("SQL  ", style="bold")
            sql_text.append(visible(plan.sql_text))
            yield Static(sql_text, id="confirm-sql")
            lock_text = Text("Lock ", style="bold")
            lock_text.append(plan.lock)
            yield Static(lock_text, id="confirm-lock")
            if plan.warning:
                yield Static(
                    Text("⚠ " + one_line(plan.warning, 300), style="bold"), id="confirm-warning"
                )
            yield from self.compose_buttons()


GROUP_TITLES = {
    "cancel": "Cancel the queries of {n}?",
    "terminate": "Terminate {n}?",
}
GROUP_EFFECTS = {
    "cancel": "each running query stops with an error; the sessions stay connected",
    "terminate": "each session ends; an open transaction is rolled back",
}
SIGNALLED_MARK = "✔"
REFUSED_MARK = "✘"


def sessions_word(count: int) -> str:
    return f"{count} session{'' if count == 1 else 's'}"


def group_text(targets: Sequence[GroupTarget], now: datetime) -> Text:
    """Every session of an action on many, one line each (pid, user, application, state,
    age), marked signalled or not; under one that is not, why. Values as plain text."""
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f"  {'PID':>7} {'USER':<12} {'APPLICATION':<16} {'STATE':<10} {'AGE':>8}\n")
    text.stylize("bold")
    for target in targets:
        backend = target.backend
        mark = SIGNALLED_MARK if target.plan is not None else REFUSED_MARK
        line = (
            f"{mark} {backend.pid:>7} {fit_cell(name_text(backend.user, 60), 12)} "
            f"{fit_cell(name_text(backend.application_name, 60), 16)} "
            f"{fit_cell(state_label(backend), 10)} {duration(backend.age(now)):>8}"
        )
        text.append(line, style="" if target.plan is not None else "dim")
        text.append("\n")
        if target.plan is None:
            text.append(f"  not signalled: {one_line(target.refusal, 200)}\n", style="italic")
    text.rstrip()
    return text


class GroupConfirmDialog(AnswerDialog):
    """Yes or no to one signal for each of many sessions, every one listed: only the
    sessions listed and marked ✔ are signalled."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "scroll_list(-1)", "Scroll up", show=False, id="confirm-scroll-up"),
        Binding("down", "scroll_list(1)", "Scroll down", show=False, id="confirm-scroll-down"),
        Binding("pageup", "page_list(-1)", "Page up", show=False, id="confirm-page-up"),
        Binding("pagedown", "page_list(1)", "Page down", show=False, id="confirm-page-down"),
    ]

    def __init__(
        self,
        action: SessionAction,
        targets: Sequence[GroupTarget],
        now: datetime,
        *,
        server: str = "",
    ) -> None:
        super().__init__(server)
        self.action = action
        self.targets = tuple(targets)
        """Every session listed; the action signals exactly those with a plan."""
        self.now = now

    @property
    def plans(self) -> tuple[ActionPlan, ...]:
        """What a yes runs: the guarded statement of each session listed as signalled."""
        return tuple(target.plan for target in self.targets if target.plan is not None)

    def compose(self) -> ComposeResult:
        signalled = len(self.plans)
        refused = len(self.targets) - signalled
        with Vertical(id="confirm-box", classes="group"):
            title = GROUP_TITLES[self.action].format(n=sessions_word(signalled))
            yield Static(Text(title, style="bold"), id="confirm-title")
            yield from self.compose_server()
            summary = Text(f"{SIGNALLED_MARK} {signalled} signalled")
            if refused:
                summary.append(f" · {REFUSED_MARK} {refused} listed but not signalled")
            summary.append(f" · {GROUP_EFFECTS[self.action]}")
            yield Static(summary, id="confirm-summary")
            with VerticalScroll(id="confirm-list"):
                yield Static(group_text(self.targets, self.now))
            function = "pg_cancel_backend" if self.action == "cancel" else "pg_terminate_backend"
            sql_text = Text("SQL  ", style="bold")
            sql_text.append(
                f"{function}(pid) once per session, only if its pid still has the same "
                "backend_start" + (" and query_start" if self.action == "cancel" else "")
            )
            yield Static(sql_text, id="confirm-sql")
            yield from self.compose_buttons(compact=True)

    def on_mount(self) -> None:
        super().on_mount()
        self._fit_list()

    def on_resize(self) -> None:
        self._fit_list()

    def _fit_list(self) -> None:
        # The title, summary, SQL and buttons stay in view (with a line to spare for each
        # of the summary and the SQL wrapping once more); the list takes what is left.
        self.query_one("#confirm-list").styles.max_height = max(3, self.size.height - 11)

    def action_scroll_list(self, step: int) -> None:
        self.query_one("#confirm-list", VerticalScroll).scroll_relative(y=step, animate=False)

    def action_page_list(self, step: int) -> None:
        box = self.query_one("#confirm-list", VerticalScroll)
        box.scroll_relative(y=step * max(1, box.size.height - 1), animate=False)
