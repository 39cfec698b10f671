"""Fixtures for layout tests; the canned data lives in tests/canned.py."""

from __future__ import annotations

from typing import Any

import pytest
from canned import (  # noqa: F401 - re-exported for the layout tests
    CAPS,
    HOSTILE,
    NOW,
    CannedSource,
    backend,
    incident_backends,
    incident_snapshot,
    settle,
)

from pgtop.app import PgTopApp
from pgtop.config import Settings


@pytest.fixture
def incident_app() -> PgTopApp:
    return PgTopApp(Settings(refresh=60), source=CannedSource(incident_snapshot()))


@pytest.fixture
def run_before() -> Any:
    return settle
