"""3. Logging: µs per log call inside a span, and records/s delivered to a Loki push receiver.

Runs inside the rendered backend's venv (it imports app.telemetry), driven by bench.run.
Prints one JSON object.
"""

from __future__ import annotations

import io
import json
import logging
import resource
import sys
import time


def per_call_us(logger: logging.Logger, tracer, calls: int) -> float:
    with tracer.start_as_current_span("bench"):
        for i in range(200):
            logger.info("warm %d", i)
        started = time.perf_counter()
        for i in range(calls):
            logger.info("order %d shipped", i, extra={"order_id": i})
        return (time.perf_counter() - started) / calls * 1e6


def main() -> None:
    loki_url, calls = sys.argv[1], int(sys.argv[2])
    from app.telemetry import logs
    from app.telemetry.config import TelemetrySettings
    from app.telemetry.loki import build_loki_handler
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import (
        BatchLogRecordProcessor,
        LogRecordExporter,
        LogRecordExportResult,
    )
    from opentelemetry.sdk.trace import TracerProvider

    class Discard(LogRecordExporter):
        """Encodes like the OTLP exporter would, then drops (the network is not what we measure)."""

        def export(self, batch):
            from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs

            encode_logs(batch).SerializeToString()
            return LogRecordExportResult.SUCCESS

        def shutdown(self):
            pass

        def force_flush(self, timeout_millis=0):
            return True

    tracer = TracerProvider().get_tracer("bench")
    sink = io.StringIO()
    results = {}

    root = logging.getLogger()
    root.handlers.clear()
    plain = logging.StreamHandler(sink)
    plain.setFormatter(logs.JsonFormatter("bench"))
    root.addHandler(plain)
    root.setLevel(logging.INFO)
    logger = logging.getLogger("app.bench")
    results["plain_json_us"] = per_call_us(logger, tracer, calls)

    root.handlers.clear()
    settings = TelemetrySettings.from_env({})
    provider = LoggerProvider()
    provider.add_log_record_processor(BatchLogRecordProcessor(Discard()))
    handlers = logs.configure_logging(settings, provider)
    handlers[0].stream = sink  # the console handler writes to memory, not the terminal
    results["scaffold_chain_us"] = per_call_us(logger, tracer, calls)

    loki = build_loki_handler(TelemetrySettings.from_env({"LOKI_URL": loki_url}), logs.JsonFormatter("bench"))
    root.addHandler(loki)
    results["scaffold_chain_with_loki_us"] = per_call_us(logger, tracer, calls)
    loki.close()
    logs.remove_handlers(handlers)

    # Delivery: push as fast as we can for a while; count what the receiver got, and memory.
    loki = build_loki_handler(TelemetrySettings.from_env({"LOKI_URL": loki_url}), logs.JsonFormatter("bench"))
    root.handlers.clear()
    root.addHandler(loki)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    emitted = 0
    while time.perf_counter() - started < 5.0:
        for _ in range(100):
            logger.info("delivery %d", emitted)
            emitted += 1
        time.sleep(0.001)
    loki.close()
    results["emit_seconds"] = time.perf_counter() - started
    results["emitted"] = emitted
    results["dropped"] = loki.dropped
    results["max_rss_growth_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    print(json.dumps(results))


if __name__ == "__main__":
    main()
