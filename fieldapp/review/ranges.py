"""Serving a stored original whole or by one byte range (RFC 9110 §14), streamed, never buffered:
a <video> seeks in footage with ranges, and a download resumes with one."""
from __future__ import annotations

import re

from flask import Response, request, stream_with_context

_RANGE = re.compile(r"^bytes=(\d{0,19})-(\d{0,19})$")
BLOCK = 256 * 1024


def requested_range(header: str | None, size: int) -> tuple[int, int] | None | bool:
    """(first, last) inclusive for one satisfiable range; None to send the whole file (no range,
    several ranges, or one we do not understand); False when the range cannot be satisfied."""
    if not header:
        return None
    m = _RANGE.match(header.strip())
    if not m or (not m.group(1) and not m.group(2)):
        return None
    if not m.group(1):  # the last N bytes
        length = int(m.group(2))
        return (max(0, size - length), size - 1) if length and size else False
    first = int(m.group(1))
    if m.group(2) and int(m.group(2)) < first:
        return None  # not a valid range (RFC 9110 §14.1.1): ignore it and send the whole file
    last = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
    if first >= size:
        return False
    return first, last


def stream(store, alg: str, digest: str, size: int, mimetype: str, disposition: str) -> Response:
    wanted = requested_range(request.headers.get("Range"), size)
    headers = {"Accept-Ranges": "bytes", "X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store",
               # Originals are evidence files, never rendered as a page of this origin.
               "Content-Disposition": disposition}
    if wanted is False:
        return Response(status=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    first, last = wanted or (0, size - 1)
    reader = store.open(alg, digest, start=first)  # a seek, or an S3 Range request: never read and dropped

    def chunks():
        with reader:
            remaining = last - first + 1
            while remaining > 0 and (block := reader.read(min(BLOCK, remaining))):
                remaining -= len(block)
                yield block

    headers["Content-Length"] = str(max(0, last - first + 1))
    status = 200
    if wanted:
        status = 206
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    return Response(stream_with_context(chunks()), status=status, mimetype=mimetype, headers=headers)
