# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""Who may upload replay chunks: the origin check. (Rate limits and the client: ../ratelimit.py.)"""

from __future__ import annotations

from fastapi import Request


def same_origin(request: Request, allowed: tuple[str, ...]) -> bool:
    """Browsers send Origin on POST; it must be this app (or one of REPLAY_ALLOWED_ORIGINS).

    Behind the web app's same-origin proxy "this app" is the host the browser talked to, which the
    proxy passes as X-Forwarded-Host/-Proto. A page elsewhere cannot set those headers on a
    cross-origin request without a CORS preflight, which this API never grants.
    """
    origin = request.headers.get("origin")
    if origin is None:
        return request.headers.get("sec-fetch-site", "same-origin") in {"same-origin", "none"}
    headers = request.headers
    host = headers.get("x-forwarded-host") or headers.get("host", "")
    scheme = headers.get("x-forwarded-proto") or request.url.scheme
    return origin in {f"{scheme}://{host}", f"{request.url.scheme}://{headers.get('host', '')}"} or origin in allowed
