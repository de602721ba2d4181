"""The OTLP and Loki receivers the measured backends export to, run in a process of their own.

In the bench's own process, decoding each arriving batch (protobuf, strictly checked) held the GIL
that the load generator's threads need: every batch a variant exported stalled the requests being
timed, whichever variant they were for. Here the receivers decode on their own interpreter.

`python -m bench.sinks` prints one JSON line with the endpoints, waits for its stdin to close,
then prints one JSON line with the rejections and Loki's entry count.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from bench.common import ROOT


@dataclass
class Sinks:
    otlp_endpoint: str
    loki_url: str
    # Filled in when the block ends: the receiver's rejections (first 20) and what Loki got.
    errors: list[str] = field(default_factory=list)
    loki_entries: int = 0


@contextmanager
def sinks() -> Iterator[Sinks]:
    """A started receiver process; its errors and Loki's entry count are read on a normal exit."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.sinks"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None and process.stdout is not None
    stopped = False
    try:
        started = json.loads(process.stdout.readline() or "null")
        if started is None:
            raise RuntimeError(f"the receiver process exited with {process.wait()} before it started")
        result = Sinks(started["otlp_endpoint"], started["loki_url"])
        yield result
        process.stdin.close()
        stopped = True
        summary = json.loads(process.stdout.readline())
        result.errors, result.loki_entries = summary["errors"], summary["loki_entries"]
    finally:
        if not stopped:
            process.kill()
        process.wait(timeout=30)


def main() -> None:
    from tests.support.loki_receiver import LokiReceiver
    from tests.support.otlp_receiver import OtlpReceiver

    with OtlpReceiver() as receiver, LokiReceiver() as loki:
        print(json.dumps({"otlp_endpoint": receiver.endpoint, "loki_url": loki.url}), flush=True)
        sys.stdin.read()  # until the bench closes it
        print(json.dumps({"errors": receiver.errors[:20], "loki_entries": len(loki.entries())}), flush=True)


if __name__ == "__main__":
    main()
