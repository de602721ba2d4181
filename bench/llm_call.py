"""6. What the LLM instrumentation adds to one Cerebe call: µs of CPU per call, on vs off.

Runs inside the rendered backend's venv (it imports app.*), driven by bench.run; prints JSON.
Both variants call the same local stub over the same httpx client; rounds alternate on/off.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from pathlib import Path


async def main(calls: int, rounds: int) -> dict:
    sys.path.insert(0, str(Path.cwd().parent / "tools"))
    import httpx
    from app.cerebe import CerebeClient
    from app.settings import Settings
    from app.telemetry.llm import LLMTelemetry
    from opentelemetry.metrics import NoOpMeterProvider
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
    from opentelemetry.trace import NoOpTracerProvider
    from stub_cerebe import StubCerebe

    class Discard(SpanExporter):
        def export(self, spans):
            return SpanExportResult.SUCCESS

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(Discard()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    with StubCerebe() as stub:
        settings = Settings(cerebe_base_url=stub.url)
        async with httpx.AsyncClient() as http:
            clients = {
                "on": CerebeClient(http, settings, LLMTelemetry(tracer_provider, meter_provider)),
                "off": CerebeClient(http, settings, LLMTelemetry(NoOpTracerProvider(), NoOpMeterProvider())),
            }
            messages = [{"role": "user", "content": "how much does this cost"}]
            for client in clients.values():
                for _ in range(50):
                    await client.chat(messages, conversation_id="warm")
            cpu: dict[str, list[float]] = {"on": [], "off": []}
            for _ in range(rounds):
                for name, client in clients.items():
                    started = time.process_time()
                    for _ in range(calls):
                        await client.chat(messages, conversation_id="bench")
                    cpu[name].append((time.process_time() - started) / calls * 1e6)
    on, off = statistics.median(cpu["on"]), statistics.median(cpu["off"])
    return {"on_us": on, "off_us": off, "added_us": on - off}


if __name__ == "__main__":
    # No log handlers here: the llm.call record is dropped at the level check; section 3 prices a
    # log record through the scaffold's handler chain.
    print(json.dumps(asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))))
