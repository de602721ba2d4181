# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""Direct push to Loki (LOKI_URL), for setups without a collector.

The standard library does the plumbing: a `QueueHandler` formats each record in the caller's
thread (where the span, hence trace_id, is current) and puts it on a bounded queue, dropping and
counting when it is full; a `QueueListener` thread hands records to `LokiPusher`, which batches
them and POSTs Loki's JSON push format with httpx. Labels are low-cardinality only (service, env,
level): trace_id travels in the JSON line. A push is never traced (suppress_instrumentation), so
pushing logs makes no spans. The default path to Loki is OTLP through the collector (deploy/),
which writes Loki's native OTLP endpoint; unset LOKI_URL once you have one.
"""

from __future__ import annotations

import logging
import os
import queue
import time
import weakref
from logging.handlers import QueueHandler, QueueListener

import httpx
from opentelemetry.instrumentation.utils import suppress_instrumentation

from .config import TelemetrySettings

PUSH_PATH = "/loki/api/v1/push"
PUSH_TIMEOUT = 5.0

_internal = logging.getLogger("app.telemetry.loki")


class LokiPusher(logging.Handler):
    """Batches formatted records and pushes them: when `batch_size` are waiting, when the oldest
    has waited `flush_interval` seconds, and on flush()/close(). Runs in the listener's thread."""

    def __init__(
        self,
        url: str,
        labels: dict[str, str],
        *,
        batch_size: int = 1000,
        flush_interval: float = 1.0,
        timeout: float = PUSH_TIMEOUT,
        auth: tuple[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.url = url
        self.labels = dict(labels)
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.pushes = 0
        self.dropped = 0
        self._timeout, self._auth = timeout, auth
        self._client = httpx.Client(timeout=timeout, auth=auth)
        self._batch: list[logging.LogRecord] = []
        self._oldest = 0.0
        self._failing = False
        self._give_up_at: float | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if not self._batch:
            self._oldest = time.monotonic()
        self._batch.append(record)
        if len(self._batch) >= self.batch_size:
            self._push()

    def seconds_until_due(self) -> float | None:
        """How long the listener may block before the oldest waiting record is due (None: nothing waits)."""
        if not self._batch:
            return None
        return max(0.0, self._oldest + self.flush_interval - time.monotonic())

    def flush_if_due(self) -> None:
        with self.lock:
            if self._batch and self.seconds_until_due() == 0.0:
                self._push()

    def flush(self) -> None:
        with self.lock:
            self._push()

    def give_up_after(self, deadline: float) -> None:
        """Shutting down: batches still waiting at `deadline` (time.monotonic) are dropped, not pushed."""
        self._give_up_at = deadline

    def close(self) -> None:
        with self.lock:
            self._push()
            self._client.close()
        super().close()

    def reset_after_fork(self) -> None:
        """The parent pushes what it had queued; the child starts empty, with its own connections."""
        self._batch = []
        self._client = httpx.Client(timeout=self._timeout, auth=self._auth)

    def _push(self) -> None:
        batch, self._batch = self._batch, []
        if not batch:
            return
        if self._client.is_closed or (self._give_up_at is not None and time.monotonic() >= self._give_up_at):
            self.dropped += len(batch)
            return
        try:
            with suppress_instrumentation():
                response = self._client.post(self.url, json=self.body(batch))
            if response.status_code >= 300:
                raise OSError(f"Loki answered {response.status_code}: {response.text[:200]}")
        except Exception as exc:  # noqa: BLE001 - Loki down must not take the app with it
            self.dropped += len(batch)
            if not self._failing:
                self._failing = True
                _internal.warning("Cannot push logs to Loki at %s (%s); dropping them until it answers", self.url, exc)
            return
        self.pushes += 1
        if self._failing:
            self._failing = False
            _internal.warning("Loki at %s answers again", self.url)

    def body(self, batch: list[logging.LogRecord]) -> dict:
        """Loki's JSON push body: one stream per level, each value [ns timestamp, JSON line]."""
        streams: dict[str, dict] = {}
        for record in batch:
            level = record.levelname.lower()
            stream = streams.setdefault(level, {"stream": {**self.labels, "level": level}, "values": []})
            stream["values"].append([str(int(record.created * 1e9)), record.getMessage()])
        return {"streams": list(streams.values())}


class _BatchingListener(QueueListener):
    """A QueueListener that also wakes when the pusher's oldest record is due (dequeue's documented
    override point for timeouts), so the last lines of a quiet app still go out."""

    def __init__(self, records: queue.Queue, pusher: LokiPusher) -> None:
        super().__init__(records, pusher)
        self.pusher = pusher

    def dequeue(self, block: bool) -> logging.LogRecord | None:
        while True:
            try:
                return self.queue.get(block, timeout=self.pusher.seconds_until_due())
            except queue.Empty:
                self.pusher.flush_if_due()

    def enqueue_sentinel(self) -> None:
        # Blocks while the queue is full: the listener drains it, dropping past the deadline.
        self.queue.put(self._sentinel)


class LokiHandler(QueueHandler):
    """What the app's loggers see: formats in the caller's thread, queues (bounded), never blocks."""

    def __init__(self, pusher: LokiPusher, *, max_queue: int = 10_000, timeout: float = PUSH_TIMEOUT) -> None:
        super().__init__(queue.Queue(max_queue))
        self.pusher = pusher
        self.queue_full_drops = 0
        self._timeout = timeout
        self.listener: _BatchingListener | None = _BatchingListener(self.queue, pusher)
        self.listener.start()
        this = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: (handler := this()) and handler._restart_after_fork())

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            self.queue_full_drops += 1

    @property
    def dropped(self) -> int:
        """Records lost: the queue was full, or their push failed or came too late at shutdown."""
        return self.queue_full_drops + self.pusher.dropped

    def close(self) -> None:
        """Pushes what is queued, giving up after the push timeout, then stops the thread. Idempotent:
        logging.shutdown() closes every handler again at interpreter exit."""
        listener, self.listener = self.listener, None
        if listener is not None:
            self.pusher.give_up_after(time.monotonic() + self._timeout)
            listener.stop()
            self.pusher.close()
        super().close()

    def _restart_after_fork(self) -> None:
        if self.listener is None:
            return
        self.queue = queue.Queue(self.queue.maxsize)
        self.pusher.reset_after_fork()
        self.listener = _BatchingListener(self.queue, self.pusher)
        self.listener.start()


def build_loki_handler(settings: TelemetrySettings, formatter: logging.Formatter) -> LokiHandler:
    """LOKI_USERNAME / LOKI_PASSWORD (basic auth, e.g. Grafana Cloud) come from the settings."""
    url = settings.loki_url or ""
    if not url.endswith(PUSH_PATH):
        url += PUSH_PATH
    password = settings.loki_password.get_secret_value() if settings.loki_password else None
    pusher = LokiPusher(
        url,
        {"service": settings.service_name, "env": settings.deployment_environment},
        batch_size=settings.loki_batch_size,
        flush_interval=settings.loki_flush_interval,
        auth=(settings.loki_username, password) if settings.loki_username and password else None,
    )
    handler = LokiHandler(pusher, max_queue=settings.loki_queue_size)
    handler.setFormatter(formatter)
    return handler
