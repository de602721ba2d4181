# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""One replay chunk, from decompressed bytes to validated, re-serialized events (pure; run in a thread).

Bounded: the body is at most REPLAY_MAX_CHUNK_BYTES (read_body stops there, so no string or number
in it is longer), at most MAX_EVENTS_PER_CHUNK events, nesting at most MAX_DEPTH deep. What is
stored is the events serialized again here, so everything the viewer's GET sends back is valid
JSON: no NaN or Infinity, no bytes that are not UTF-8.
"""

from __future__ import annotations

import json
import re

from ..limits import Refused

TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
MAX_EVENTS_PER_CHUNK = 10_000
MAX_TRACE_IDS_PER_CHUNK = 500
# rrweb nests two levels per DOM level (a node, its childNodes): 256 is a DOM some 120 elements deep.
MAX_DEPTH = 256
MAX_SEQ = 1_000_000


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _refuse(code: str, detail: str) -> Refused:
    return Refused(400, code, detail)


def _depth_within(value: object, limit: int) -> bool:
    """Whether `value` nests at most `limit` containers deep (iterative: no recursion to exhaust)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = item.values()
        elif not isinstance(item, list):
            continue
        if depth > limit:
            return False
        stack.extend((child, depth + 1) for child in item if isinstance(child, (dict, list)))
    return True


def parse_chunk(body: bytes) -> tuple[int, bytes, list[str]]:
    """(seq, events as a JSON array, trace ids) of an upload; raises Refused(400, code, one line)."""
    try:
        payload = json.loads(body, parse_constant=_no_constants)
    except RecursionError:
        raise _refuse("too_deep", f"body nests deeper than {MAX_DEPTH} levels") from None
    except ValueError:  # UnicodeDecodeError and JSONDecodeError included
        raise _refuse("bad_json", "body is not UTF-8 JSON (NaN and Infinity are not JSON)") from None
    if not isinstance(payload, dict):
        raise _refuse("bad_chunk", "body must be a JSON object with seq, events and trace_ids")
    seq, events, trace_ids = payload.get("seq"), payload.get("events"), payload.get("trace_ids", [])
    if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq <= MAX_SEQ:
        raise _refuse("bad_seq", f"seq must be an integer from 0 to {MAX_SEQ}")
    if not isinstance(events, list) or not 1 <= len(events) <= MAX_EVENTS_PER_CHUNK:
        raise _refuse("bad_events", f"events must be a list of 1 to {MAX_EVENTS_PER_CHUNK} rrweb events")
    for event in events:
        if (
            not isinstance(event, dict)
            or not isinstance(event.get("type"), int)
            or isinstance(event.get("type"), bool)
            or not isinstance(event.get("timestamp"), (int, float))
            or isinstance(event.get("timestamp"), bool)
        ):
            raise _refuse("bad_event", "every event needs an integer type and a numeric timestamp")
    if not isinstance(trace_ids, list) or len(trace_ids) > MAX_TRACE_IDS_PER_CHUNK:
        raise _refuse("bad_trace_ids", f"trace_ids must be a list of at most {MAX_TRACE_IDS_PER_CHUNK} ids")
    if not all(isinstance(t, str) and TRACE_ID.match(t) for t in trace_ids):
        raise _refuse("bad_trace_ids", "each trace id must be 32 lowercase hex characters")
    if not _depth_within(events, MAX_DEPTH):
        raise _refuse("too_deep", f"events nest deeper than {MAX_DEPTH} levels")
    return seq, _serialize(events), list(dict.fromkeys(trace_ids))


def _serialize(events: list) -> bytes:
    """The events as compact JSON; a number too large for a float (1e999) is refused here."""
    try:
        text = json.dumps(events, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except ValueError:
        raise _refuse("bad_number", "events hold a number that is not finite") from None
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (\ud800): valid JSON once escaped
        return json.dumps(events, allow_nan=False, separators=(",", ":")).encode("ascii")
