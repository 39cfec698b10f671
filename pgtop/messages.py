"""App-wide messages: events that happened (past tense)."""

from __future__ import annotations

from textual.message import Message

from pgtop.model import Snapshot


class SnapshotCollected(Message):
    """A poll finished with fresh data."""

    def __init__(self, snapshot: Snapshot, origin: object = None) -> None:
        super().__init__()
        self.snapshot = snapshot
        self.origin = origin
        """The source it came from (None: the only one)."""

    def can_replace(self, message: Message) -> bool:
        # If the UI falls behind, only the newest snapshot matters.
        return isinstance(message, SnapshotCollected)


class PollFailed(Message):
    """A poll failed; ``reason`` is one line for the user."""

    def __init__(self, reason: str, *, connection_lost: bool, origin: object = None) -> None:
        super().__init__()
        self.reason = reason
        self.connection_lost = connection_lost
        self.origin = origin


class TabDataCollected(Message):
    """A tab's own collector finished."""

    def __init__(self, tab: str, data: object, origin: object = None) -> None:
        super().__init__()
        self.tab = tab
        self.data = data
        self.origin = origin


class TabDataFailed(Message):
    """A tab's own collector failed; ``reason`` is one line for the user."""

    def __init__(self, tab: str, reason: str, origin: object = None) -> None:
        super().__init__()
        self.tab = tab
        self.reason = reason
        self.origin = origin
