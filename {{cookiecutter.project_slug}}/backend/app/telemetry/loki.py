"""Direct push to Loki (LOKI_URL), for setups without a collector.

python-logging-loki (0.3.1, 2019) sends one blocking POST per record; here its emitter is kept for
the HTTP session, auth and label formatting, behind a bounded queue and a thread that pushes
batches. Labels are low-cardinality only (service, env, level): trace_id travels in the JSON line.
Replacement when you outgrow it: send logs over OTLP to the collector and let it write to Loki's
native OTLP endpoint (deploy/), then unset LOKI_URL.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
import weakref

from logging_loki.emitter import LokiEmitterV1
from opentelemetry.context import attach, detach, set_value
from opentelemetry.instrumentation.utils import _SUPPRESS_INSTRUMENTATION_KEY

from .config import TelemetrySettings

PUSH_PATH = "/loki/api/v1/push"

_internal = logging.getLogger("app.telemetry.loki")


class _BatchEmitter(LokiEmitterV1):
    """Fixed labels plus level; never the record's own `tags` (a trace_id there would be a label)."""

    def build_tags(self, record: logging.LogRecord) -> dict[str, str]:
        return {**self.tags, "level": record.levelname.lower()}

    def push(self, batch: list[tuple[logging.LogRecord, str]], timeout: float) -> None:
        streams: dict[tuple, dict] = {}
        for record, line in batch:
            tags = self.build_tags(record)
            key = tuple(sorted(tags.items()))
            stream = streams.setdefault(key, {"stream": tags, "values": []})
            stream["values"].append([str(int(record.created * 1e9)), line])
        response = self.session.post(self.url, json={"streams": list(streams.values())}, timeout=timeout)
        if response.status_code != self.success_response_code:
            raise OSError(f"Loki answered {response.status_code}: {response.text[:200]}")


class LokiBatchHandler(logging.Handler):
    """Queues formatted lines (bounded: drops and counts when full); a thread pushes batches."""

    def __init__(
        self,
        url: str,
        labels: dict[str, str],
        *,
        max_queue: int = 10_000,
        batch_size: int = 1_000,
        flush_interval: float = 1.0,
        timeout: float = 5.0,
        auth: tuple[str, str] | None = None,
    ) -> None:
        super().__init__()
        self._emitter = _BatchEmitter(url, tags=labels, auth=auth)
        self._queue: queue.Queue[tuple[logging.LogRecord, str] | None] = queue.Queue(max_queue)
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._timeout = timeout
        self.dropped = 0
        self.failed_pushes = 0
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="loki-push", daemon=True)
        self._thread.start()
        this = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: (handler := this()) and handler._restart_after_fork())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # noqa: BLE001 - a log call must never raise into the app
            self.handleError(record)
            return
        try:
            self._queue.put_nowait((record, line))
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=self._flush_interval)
            except queue.Empty:
                if self._closed.is_set():
                    return
                continue
            batch = [] if item is None else [item]
            stop = item is None
            while len(batch) < self._batch_size and not stop:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                else:
                    batch.append(item)
            if batch:
                self._push(batch)
            if stop:
                return

    def _push(self, batch: list[tuple[logging.LogRecord, str]]) -> None:
        token = attach(set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
        try:
            self._emitter.push(batch, self._timeout)
        except Exception as exc:  # noqa: BLE001 - Loki down must not take the app with it
            self.failed_pushes += 1
            self.dropped += len(batch)
            _internal.warning("Loki push failed, %d records dropped: %s", len(batch), exc)
        finally:
            detach(token)

    def _restart_after_fork(self) -> None:
        if self._closed.is_set():
            return
        self._queue = queue.Queue(self._queue.maxsize)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="loki-push", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Pushes what is queued (bounded by the push timeout), then stops the thread."""
        if not self._closed.is_set():
            self._closed.set()
            try:
                self._queue.put(None, timeout=self._timeout)
            except queue.Full:
                pass
            self._thread.join(self._timeout + 1.0)
            self._emitter.close()
        super().close()

    def flush(self) -> None:
        deadline = time.monotonic() + self._timeout
        while not self._queue.empty() and time.monotonic() < deadline:
            time.sleep(0.01)


def build_loki_handler(settings: TelemetrySettings, formatter: logging.Formatter) -> LokiBatchHandler:
    """LOKI_USERNAME / LOKI_PASSWORD (basic auth, e.g. Grafana Cloud) come from the environment."""
    url = settings.loki_url or ""
    if not url.endswith(PUSH_PATH):
        url += PUSH_PATH
    user, password = os.environ.get("LOKI_USERNAME"), os.environ.get("LOKI_PASSWORD")
    handler = LokiBatchHandler(
        url,
        {"service": settings.service_name, "env": settings.deployment_environment},
        auth=(user, password) if user and password else None,
    )
    handler.setFormatter(formatter)
    return handler
