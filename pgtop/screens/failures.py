"""No failure is silent: a worker that ends in an error reaches the screen and the crash log."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.worker import Worker, WorkerState

if TYPE_CHECKING:
    from pgtop.app import PgTopApp


class ReportsFailures:
    """Mixed into a widget or screen that starts workers (``exit_on_error=False``): one that
    fails is reported by the app, instead of ending without a trace."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR and event.worker.error is not None:
            app = cast("PgTopApp", self.app)  # type: ignore[attr-defined]
            app.report_failure(event.worker.error, event.worker.description)
