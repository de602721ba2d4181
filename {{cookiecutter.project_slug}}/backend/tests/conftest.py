# Yours (sage-obs scaffold): change it freely; `make update` merges any template change into your edits.
"""Fixtures for the API's tests: a stub Cerebe, a fresh database, in-memory telemetry.

`telemetry_capture` is yours to reuse: build an app with `client_for(...)` or
`create_app(..., telemetry_options=telemetry_capture.options())` and assert on its spans and logs.
The capture ignores OTEL_* variables and never installs global providers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from stub_cerebe import StubCerebe  # tools/stub_cerebe.py, on pytest's pythonpath (pyproject.toml)

from app.main import create_app
from app.settings import Settings
from app.telemetry.testing import TelemetryCapture


@pytest.fixture
def stub_cerebe() -> Iterator[StubCerebe]:
    with StubCerebe() as stub:
        yield stub


@pytest.fixture
def settings(stub_cerebe: StubCerebe, tmp_path: Path) -> Settings:
    # Only these values and the defaults: the developer's own environment does not leak in.
    return Settings.from_env(
        {},
        database_url=f"sqlite:///{tmp_path / 'test.db'}",
        cerebe_base_url=stub_cerebe.url,
        cerebe_api_key="test-key-not-secret",
        cerebe_timeout=1.0,
    )


@pytest.fixture
def telemetry_capture() -> TelemetryCapture:
    return TelemetryCapture()


@pytest.fixture
def client_for(settings: Settings, telemetry_capture: TelemetryCapture) -> Iterator[Callable[..., TestClient]]:
    """Builds and starts an app; keyword arguments override TelemetrySettings fields."""
    clients: list[TestClient] = []

    def build(**telemetry_settings: object) -> TestClient:
        app = create_app(settings, telemetry_options=telemetry_capture.options(**telemetry_settings))
        telemetry_capture.attach(app)
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(client_for: Callable[..., TestClient]) -> TestClient:
    return client_for()
