"""3. Logging: µs per log call inside a span, and records/s delivered to a Loki push receiver.

Runs inside the rendered backend's venv (it imports app.telemetry), driven by bench.run.
Prints one JSON object.
"""

from __future__ import annotations

import io
import json
import logging
import resource
import statistics
import sys
import time


def per_call_us(
    logger: logging.Logger,
    tracer,
    calls: int,
    flush=lambda: None,
    *,
    add: logging.Handler | None = None,
    finish=None,
) -> float:
    """CPU µs per call, every thread of this process counted, the export of what the calls queued
    included: `flush` (the variant's LoggerProvider.force_flush) runs after the warm-up, so its
    exports do not count, and `finish` (default: `flush`) inside the measurement, so no variant's
    exports spill into the next one's. `add`: a handler put on the root logger once warm."""
    with tracer.start_as_current_span("bench"):
        for i in range(200):
            logger.info("warm %d", i)
        flush()
        if add is not None:
            logging.getLogger().addHandler(add)
        started = time.process_time()
        for i in range(calls):
            logger.info("order %d shipped", i, extra={"order_id": i})
        (finish or flush)()
        return (time.process_time() - started) / calls * 1e6


ROUNDS = 11
# Calls per round at most: with the warm-up's 200 they stay below the batch processor's queue
# (2,048), so none is dropped unencoded however far its export thread falls behind.
MAX_CALLS_PER_ROUND = 1800


def main() -> None:
    loki_url, calls = sys.argv[1], int(sys.argv[2])
    from app.telemetry import logs
    from app.telemetry.config import TelemetrySettings
    from app.telemetry.loki import build_loki_handler
    from app.telemetry.resource import build_resource
    from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
    from opentelemetry.sdk.trace import TracerProvider

    class Discard(LogRecordExporter):
        """Encodes like the OTLP exporter would, then drops (the network is not what we measure)."""

        def __init__(self, encode: bool) -> None:
            self._encode = encode

        def export(self, batch):
            from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs

            if self._encode:
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
    root.setLevel(logging.INFO)
    logger = logging.getLogger("app.bench")
    plain = logging.StreamHandler(sink)
    plain.setFormatter(logs.JsonFormatter("bench"))

    # The scaffold's chain as init_telemetry builds it (its resource and logger provider), and
    # its floor: the same chain with an exporter that drops records without encoding them.
    settings = TelemetrySettings.from_env({})
    chains, flushes = {}, {"plain_json_us": lambda: None}
    for name, encode in (("scaffold_chain_us", True), ("scaffold_chain_floor_us", False)):
        root.handlers.clear()
        provider = logs.build_logger_provider(settings, build_resource(settings), Discard(encode))
        chains[name] = logs.configure_logging(settings, provider)
        chains[name][0].stream = sink  # the console handler writes to memory, not the terminal
        flushes[name] = provider.force_flush
    variants = {"plain_json_us": [plain], **chains}
    per_round = max(min(calls // ROUNDS, MAX_CALLS_PER_ROUND), 200)
    # Interleaved rounds (the machine is shared): each variant's median, and the median ratio.
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(ROUNDS):
        for name, handlers in variants.items():
            root.handlers[:] = handlers
            samples[name].append(per_call_us(logger, tracer, per_round, flushes[name]))
            sink.seek(0)
            sink.truncate()
    for name, values in samples.items():
        results[name] = statistics.median(values)
    for name in chains:
        ratios = [c / p for c, p in zip(samples[name], samples["plain_json_us"], strict=True)]
        results[name.replace("_us", "_ratio")] = statistics.median(ratios)

    handlers = chains["scaffold_chain_us"]
    root.handlers[:] = handlers
    loki = build_loki_handler(TelemetrySettings.from_env({"LOKI_URL": loki_url}), logs.JsonFormatter("bench"))
    # close() pushes what is still queued and stops the push thread (idempotent): inside the
    # measurement, so the Loki pushes these calls caused are charged to them too.
    chain_flush = flushes["scaffold_chain_us"]
    results["scaffold_chain_with_loki_us"] = per_call_us(
        logger, tracer, per_round, chain_flush, add=loki, finish=lambda: (chain_flush(), loki.close())
    )
    logs.remove_handlers(handlers)
    logs.remove_handlers(chains["scaffold_chain_floor_us"])

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
