"""``next`` targets judged the way a browser's URL parser reads them: only our own origin's paths."""
from __future__ import annotations

import pytest

from fieldapp.safe_redirect import MAX_LENGTH, safe_next, same_origin_path

# Each of these would take a browser to another origin, run script, or is not a path at all.
HOSTILE_TARGETS = [
    "//evil.example",
    "///evil.example",
    "/\t/evil.example",           # next=/%09/evil.example: the tab is dropped -> //evil.example
    "/\n/evil.example",
    "/\r\n/evil.example",
    "/\t\\evil.example",
    "\t//evil.example",
    " //evil.example",
    "\x00//evil.example",         # leading C0 controls are stripped by browsers
    "\x1f/\\evil.example",
    "/\\tevil",                   # a backslash, then "tevil": //tevil
    "\\\\evil.example",           # \\evil.example
    "\\/evil.example",
    "/\\evil.example",
    "/\\\\evil.example",
    "https:evil.example",
    "https://evil.example",
    "HTTPS://evil.example/",
    "http:/evil.example",
    "https:/\\evil.example",
    "javascript:alert(1)",
    " javascript:alert(1)",
    "java\tscript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "evil.example",
    "evil.example/path",
    "?next=//evil.example",
    "#//evil.example",
    "/.//evil.example",           # dot segments resolved: //evil.example
    "/%2e//evil.example",
    "/%2E%2E//evil.example",
    "/a/..//evil.example",
    "/\x00/x",                     # NUL and other controls inside: never in a link of ours
    "/units\x7f",
    "/" + "a" * MAX_LENGTH,
    "",
    "   ",
    "\t\n",
]

NOT_STRINGS = [None, 5, 1.5, True, ["/"], {"next": "/"}]

# (given, what a browser would follow and we hand on)
SAME_ORIGIN = [
    ("/", "/"),
    ("/units/1?tab=cases#top", "/units/1?tab=cases#top"),
    ("/review/queue?next=//evil.example", "/review/queue?next=//evil.example"),  # only a query value
    ("/search?q=a\\b", "/search?q=a\\b"),        # a backslash in the query is not a slash
    ("/a\\b", "/a/b"),                           # in the path it is
    ("  /units  ", "/units"),
    ("/\tunits", "/units"),                      # a real tab is dropped: still our /units
    ("/un\nits", "/units"),
    ("/%2F/evil.example", "/%2F/evil.example"),  # browsers keep %2F encoded: a path segment
    ("/%09/evil.example", "/%09/evil.example"),  # literally "%09" (a double-encoded link)
    ("/%5C%5Cevil.example", "/%5C%5Cevil.example"),
    ("/a/../b", "/a/../b"),
    ("/案件/1", "/案件/1"),
    ("/x:y", "/x:y"),
]


@pytest.mark.parametrize("target", HOSTILE_TARGETS)
def test_hostile_targets_are_refused(target):
    assert same_origin_path(target) is None
    assert safe_next(target, "/home") == "/home"


@pytest.mark.parametrize("target", NOT_STRINGS)
def test_values_that_are_not_strings_are_refused_without_an_error(target):
    assert safe_next(target, "/home") == "/home"


@pytest.mark.parametrize(("target", "expected"), SAME_ORIGIN)
def test_same_origin_paths_are_kept_in_the_form_a_browser_follows(target, expected):
    assert same_origin_path(target) == expected


def test_a_path_of_the_maximum_length_is_kept():
    target = "/" + "a" * (MAX_LENGTH - 1)
    assert same_origin_path(target) == target


@pytest.mark.parametrize("target", HOSTILE_TARGETS + [t for t, _ in SAME_ORIGIN])
def test_whatever_is_handed_on_is_a_single_slash_path_without_control_characters(target):
    result = safe_next(target, "/")
    assert result.startswith("/") and not result.startswith("//") and not result.startswith("/\\")
    assert not any(ord(c) < 0x20 or ord(c) == 0x7F for c in result)
