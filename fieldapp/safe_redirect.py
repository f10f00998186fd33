"""Where we may send a browser after sign-in or a language switch: only paths on our own origin.

A ``next`` value comes from a link anybody can craft. It is judged the way a browser's URL parser
(WHATWG URL standard) will read it, not the way it looks: browsers strip leading and trailing
control characters and spaces, drop tabs and newlines anywhere, and read a backslash in the path as
a slash, so ``/\\t/evil.example`` and ``/\\evil.example`` both mean ``//evil.example``, a link to
another site. The value we hand on (to a ``Location`` header or to ``location.assign``) is the
normalised one, so what was checked is exactly what the browser follows.
"""
from __future__ import annotations

# Longer than any of our own URLs; a huge Location header can also break proxies in front of us.
MAX_LENGTH = 2048

_C0_CONTROL_OR_SPACE = "".join(chr(code) for code in range(0x21))
_TAB_OR_NEWLINE = str.maketrans("", "", "\t\n\r")
_SINGLE_DOT_SEGMENTS = {".", "%2e"}
_DOUBLE_DOT_SEGMENTS = {"..", ".%2e", "%2e.", "%2e%2e"}


def safe_next(target: object, fallback: str) -> str:
    """``target`` as a same-origin path, or ``fallback`` when it is anything else."""
    return same_origin_path(target) or fallback


def same_origin_path(target: object) -> str | None:
    """The path (with query and fragment) a browser would follow for ``target`` if that stays on
    our origin; None for another origin, a scheme, or anything we cannot judge with confidence."""
    if not isinstance(target, str) or len(target) > MAX_LENGTH:
        return None
    normalised = target.strip(_C0_CONTROL_OR_SPACE).translate(_TAB_OR_NEWLINE)
    if _has_control_character(normalised):
        return None  # no link of ours carries one; browsers would only escape them anyway
    path, rest = _split_path(normalised)
    path = path.replace("\\", "/")  # what browsers do in the path of an http(s) URL
    # One leading slash: a path on this origin. Two: "//host", another origin. None: a scheme
    # ("https:", "javascript:") or a relative path we have no business resolving.
    if not path.startswith("/") or path.startswith("//"):
        return None
    if _starts_with_empty_segment(path):
        return None
    return path + rest


def _has_control_character(value: str) -> bool:
    return any(ord(char) < 0x20 or ord(char) == 0x7F for char in value)


def _split_path(url: str) -> tuple[str, str]:
    """Split off the query and fragment: backslashes are slashes only in the path."""
    ends = [index for index in (url.find("?"), url.find("#")) if index != -1]
    cut = min(ends) if ends else len(url)
    return url[:cut], url[cut:]


def _starts_with_empty_segment(path: str) -> bool:
    """True when resolving dot segments leaves a path starting with "//", as "/.//evil.example" or
    "/%2e//evil.example" do. A browser keeps that on our origin, but anything downstream that
    normalises the path would produce a link to another host, and no page of ours looks like it."""
    segments: list[str] = []
    parts = path.split("/")[1:]
    for position, segment in enumerate(parts):
        is_last = position == len(parts) - 1
        lowered = segment.lower()
        if lowered in _DOUBLE_DOT_SEGMENTS:
            if segments:
                segments.pop()
            if is_last:
                segments.append("")
        elif lowered in _SINGLE_DOT_SEGMENTS:
            if is_last:
                segments.append("")
        else:
            segments.append(segment)
    return len(segments) > 1 and segments[0] == ""
