# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""Request bodies read with a byte limit, enforced while they stream in.

A route that needs its body calls `read_body(request, max_bytes, code=...)` instead of
`await request.body()`: a declared Content-Length over the limit is refused before anything is
read, and a chunked (or lying) body is refused as soon as it passes the limit, so an oversized
upload costs the server `max_bytes`, never the whole body. With `inflate=True` a gzip body is
decompressed as it arrives and the limit counts decompressed bytes (a 10 kB gzip bomb stops at
the limit, it is never inflated first); without it, an encoded body is refused (415).

Refusals are `Refused` (an HTTPException): the JSON answer carries a one-line `detail` for people
and a `code` for programs, e.g. `{"detail": "chunk is over 1048576 bytes", "code": "chunk_too_large"}`.
errors.py answers them in the app's error shape (with `trace_id`).
"""

from __future__ import annotations

import zlib

from fastapi import HTTPException, Request
from starlette.requests import ClientDisconnect


class Refused(HTTPException):
    """A 4xx with a one-line reason (`detail`) and a machine-readable `code`."""

    def __init__(self, status_code: int, code: str, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(status_code, detail, headers)
        self.code = code


async def read_body(request: Request, max_bytes: int, *, code: str = "body_too_large", inflate: bool = False) -> bytes:
    """The body, at most `max_bytes` (decompressed when `inflate`); 413 `code` past it, read no further."""
    too_large = Refused(413, code, f"body is over {max_bytes} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise Refused(413, code, f"body is {declared} bytes; the limit is {max_bytes}")
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in {"identity", ""} and not (inflate and encoding == "gzip"):
        accepted = "gzip or none" if inflate else "none"
        raise Refused(415, "unsupported_encoding", f"Content-Encoding {encoding!r} is not accepted ({accepted})")
    inflater = zlib.decompressobj(wbits=31) if encoding == "gzip" else None
    body = bytearray()
    received = 0  # as sent: deflate's empty blocks could stream forever while inflating to nothing
    try:
        async for part in request.stream():
            received += len(part)
            if received > max_bytes:
                raise too_large
            if inflater is None:
                body += part
            else:
                try:
                    body += inflater.decompress(part, max_bytes + 1 - len(body))
                except zlib.error:
                    raise Refused(400, "bad_gzip", "body is not valid gzip") from None
                if inflater.unconsumed_tail:
                    raise too_large
                if inflater.eof and inflater.unused_data.strip(b"\0"):
                    raise Refused(400, "bad_gzip", "body has data after its gzip stream")
            if len(body) > max_bytes:
                raise too_large
    except ClientDisconnect:
        # The client left, or stalled past SERVER_BODY_TIMEOUT and was cut off: a 4xx, never a 500.
        raise Refused(499, "client_closed_request", "the client closed the connection before its body ended") from None
    if inflater is not None and not inflater.eof:
        raise Refused(400, "bad_gzip", "body is a truncated gzip stream")
    return bytes(body)


__all__ = ["Refused", "read_body"]
