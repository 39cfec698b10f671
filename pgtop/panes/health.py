"""The Health tab: every check, worst first; Enter leads to where you act on it."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from datetime import datetime
from typing import ClassVar

from textual import on
from textual.binding import BindingType

from pgtop.collectors.health import UNITS, Finding, HealthData, Status, Target
from pgtop.formats import duration, quantity
from pgtop.panes.base import FILTER_BINDINGS, SORT_BINDINGS, ListPane
from pgtop.text import name_text, one_line
from pgtop.widgets.keyed_table import Column, KeyedTable, Row

COLUMNS = (
    Column("status", "STATUS", width=8),
    Column("check", "CHECK", width=20, hide_below=70),
    Column("summary", "WHAT WAS MEASURED", min_width=20),
    Column("threshold", "WARN / CRIT", width=15, align="right", hide_below=100),
    Column("since", "SINCE", width=8, align="right", hide_below=90),
)

TONES = {Status.CRIT: "error", Status.WARN: "warning", Status.UNKNOWN: "muted", Status.OK: ""}


def threshold_text(finding: Finding) -> str:
    if finding.warn is None or finding.crit is None:
        return ""
    unit = UNITS.get(finding.check, "")
    if unit in ("s", "%"):
        return f"{quantity(finding.warn, unit)} / {quantity(finding.crit, unit)}"
    return f"{quantity(finding.warn, '')} / {quantity(finding.crit, '')}{unit}"


def health_row(finding: Finding, now: datetime) -> Row:
    since = (now - finding.since).total_seconds() if finding.since is not None else None
    cells = (
        finding.status.word.upper(),
        finding.check,
        one_line(finding.summary, 400),
        threshold_text(finding),
        duration(since),
    )
    return Row(
        key=finding.check,
        cells=cells,
        sort_values=(-finding.status, finding.check, finding.summary, finding.warn, since),
        tone=TONES[finding.status],
    )


def destination(target: Target) -> tuple[str, Hashable | None, str]:
    """The tab a finding leads to, the row there, and what that row is."""
    if target.kind == "blocker":
        return "locks", (target.pid,), f"pid {target.pid}"
    if target.kind in ("table", "index"):
        tab = "vacuum" if target.kind == "table" else "indexes"
        return tab, target.oid, name_text(target.name, 80)
    if target.kind == "statement":
        queryid = target.statement[2] if target.statement else None
        return "queries", target.statement, f"queryid {queryid}"
    if target.kind == "slot":
        return "replication", target.name, f"slot {name_text(target.name, 60)}"
    if target.kind == "database":
        return "vacuum", None, ""
    return "activity", target.pid, f"pid {target.pid}"


class HealthPane(ListPane):
    """One row per check: its status, what was measured, the thresholds, since when."""

    TAB = "health"
    TITLE = "Health"
    KEY = "7"
    COLUMNS = COLUMNS
    DEFAULT_SORT = "status"
    NOUN = "checks"
    FAILURE_LABEL = "checks unavailable"
    BINDINGS: ClassVar[list[BindingType]] = [*FILTER_BINDINGS, *SORT_BINDINGS]

    def __init__(self, *, lazy: bool = False) -> None:
        super().__init__(lazy=lazy)
        self._data: HealthData | None = None

    def show_data(self, data: HealthData) -> None:
        self._data = data
        self.failure = ""
        self.show_rows()

    def rows(self) -> Iterable[Row]:
        data = self._data
        if data is None:
            return []
        return [health_row(f, data.collected_at) for f in data.findings]

    def status_parts(self) -> list[str]:
        data = self._data
        if data is None:
            return ["waiting for the first checks…"]
        counts = {status: 0 for status in Status}
        for finding in data.findings:
            counts[finding.status] += 1
        parts = [f"{counts[s]} {s.word}" for s in sorted(Status, reverse=True) if counts[s]]
        read = (
            f"slow checks read {duration((data.collected_at - data.read_at).total_seconds())} ago"
            if data.read_at is not None
            else "slow checks not read yet"
        )
        return [" · ".join(parts), read, "Enter: go to it"]

    @on(KeyedTable.RowActivated, "#health-table")
    def go_to_target(self, event: KeyedTable.RowActivated) -> None:
        data = self._data
        if data is None:
            return
        finding = next((f for f in data.findings if f.check == event.key), None)
        if finding is None or finding.target is None:
            self.host.say("nothing to go to for this check", timeout=3)
            return
        target = finding.target
        tab, key, what = destination(target)
        if target.kind == "database" and target.name is not None:
            self.host.show_catalog_database(target.name)
        if not self.host.go_to(tab, key, what):
            if target.pid is not None and self.host.go_to("activity", target.pid, what):
                return
            self.host.say(f"no {tab} tab to show {what or 'it'}", timeout=5)
