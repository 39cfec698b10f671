"""App-wide messages: events that happened (past tense)."""

from __future__ import annotations

from textual.message import Message

from pgtop.model import Snapshot


class SnapshotCollected(Message):
    """A poll finished with fresh data."""

    def __init__(self, snapshot: Snapshot) -> None:
        super().__init__()
        self.snapshot = snapshot

    def can_replace(self, message: Message) -> bool:
        # If the UI falls behind, only the newest snapshot matters.
        return isinstance(message, SnapshotCollected)


class PollFailed(Message):
    """A poll failed; ``reason`` is one line for the user."""

    def __init__(self, reason: str, *, connection_lost: bool) -> None:
        super().__init__()
        self.reason = reason
        self.connection_lost = connection_lost


class TabDataCollected(Message):
    """A tab's own collector finished."""

    def __init__(self, tab: str, data: object) -> None:
        super().__init__()
        self.tab = tab
        self.data = data


class TabDataFailed(Message):
    """A tab's own collector failed; ``reason`` is one line for the user."""

    def __init__(self, tab: str, reason: str) -> None:
        super().__init__()
        self.tab = tab
        self.reason = reason
