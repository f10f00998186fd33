"""Continuous recording (art. 9) measured from the footage itself, not from what the phone says.

For one camera on one activity the question is: from arrival to departure, when was the camera *not*
recording, and did the officer declare and explain each interruption? The answer is the window minus
the union of the camera's segments (the *gaps*), minus the declared stops that carry an acceptable
explanation (what is left is *unexplained*). Two things are reported but are not breaches:

* footage running inside a declared stop (``stops_with_footage``) — the phone and the camera
  disagree, which the lead should see, but nothing went unrecorded;
* no footage at all (``no_footage``) — almost always "not yet docked/ingested"; reporting the whole
  visit as one gap would cry wolf on every visit of the day.

Small gaps are file boundaries (the camera splits files every few minutes and loses under a second
between them): gaps of at most ``min_gap`` are ignored. Camera clocks drift against the phone, so
``tolerance`` shrinks each gap at both ends before deciding it exists, and widens each declared stop
by the same amount before it explains or contains anything.

Pure functions over aware-UTC datetimes; no database, no Flask.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = [
    "CameraCoverage",
    "DeclaredStop",
    "Gap",
    "Interval",
    "camera_coverage",
    "covers",
    "subtract",
    "union",
]

DEFAULT_MIN_GAP = timedelta(seconds=1)
DEFAULT_COVERS_TOLERANCE = timedelta(minutes=2)


@dataclass(frozen=True)
class Interval:
    """A time range [start, end]; empty when end <= start."""

    start: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        return max((self.end - self.start).total_seconds(), 0.0)


@dataclass(frozen=True)
class DeclaredStop:
    """An interruption the officer declared on the phone."""

    id: str
    start: datetime  # stopped_at
    end: datetime | None  # resumed_at; None = not resumed before departure
    explained: bool  # carries a reason acceptable under art. 9


@dataclass(frozen=True)
class Gap:
    """A stretch of the window with no footage."""

    start: datetime
    end: datetime
    seconds: float
    explained_by: tuple[str, ...]  # ids of declared stops overlapping it (explained or not)


@dataclass(frozen=True)
class CameraCoverage:
    """What one camera recorded of one activity window, and what it did not."""

    camera_serial: str
    window: Interval  # arrival..departure
    recorded_seconds: float
    gaps: tuple[Gap, ...]
    unexplained: tuple[Gap, ...]
    unexplained_seconds: float
    stops_with_footage: tuple[tuple[str, float], ...]  # (stop id, seconds of footage inside the stop)
    no_footage: bool  # nothing of this camera overlaps the window: not yet ingested, not a gap


# --------------------------------------------------------------------------- interval algebra


def union(intervals: Iterable[Interval]) -> list[Interval]:
    """Merged, sorted, with touching or overlapping intervals joined; empty ones dropped (they
    cover nothing, and keeping them would let a zero-length file "bridge" two real gaps)."""
    merged: list[Interval] = []
    for interval in sorted((i for i in intervals if i.end > i.start), key=lambda i: i.start):
        if merged and interval.start <= merged[-1].end:
            if interval.end > merged[-1].end:
                merged[-1] = Interval(merged[-1].start, interval.end)
        else:
            merged.append(interval)
    return merged


def subtract(window: Interval, covered: list[Interval]) -> list[Interval]:
    """The parts of ``window`` not covered, sorted, each of positive length. ``covered`` need not be
    merged or clipped."""
    remaining: list[Interval] = []
    cursor = window.start
    for part in union(covered):
        if part.end <= cursor:
            continue
        if part.start >= window.end:
            break
        if part.start > cursor:
            remaining.append(Interval(cursor, part.start))
        cursor = max(cursor, part.end)
    if cursor < window.end:
        remaining.append(Interval(cursor, window.end))
    return remaining


def _clip(interval: Interval, window: Interval) -> Interval | None:
    """The part of ``interval`` inside ``window``, or None when they share no positive length."""
    start, end = max(interval.start, window.start), min(interval.end, window.end)
    return Interval(start, end) if end > start else None


def _overlap_seconds(interval: Interval, covered: list[Interval]) -> float:
    """Seconds of ``interval`` covered by the (merged) ``covered``."""
    total = 0.0
    for part in covered:
        clipped = _clip(part, interval)
        if clipped is not None:
            total += clipped.seconds
    return total


# --------------------------------------------------------------------------- coverage


def _stop_interval(stop: DeclaredStop, window: Interval) -> Interval:
    """A stop never resumed runs to departure."""
    return Interval(stop.start, stop.end if stop.end is not None else window.end)


def _ids_overlapping(interval: Interval, stops: list[tuple[DeclaredStop, Interval]]) -> tuple[str, ...]:
    return tuple(stop.id for stop, span in stops if _clip(span, interval) is not None)


def _gaps(window: Interval, covered: list[Interval], min_gap: timedelta, tolerance: timedelta) -> list[Interval]:
    """Window minus footage, each gap shrunk by the clock tolerance at both ends; what is left of at
    most ``min_gap`` is a file boundary or clock noise, not a gap."""
    found = []
    for raw in subtract(window, covered):
        shrunk = Interval(raw.start + tolerance, raw.end - tolerance)
        if shrunk.seconds > min_gap.total_seconds():
            found.append(shrunk)
    return found


def _unexplained(
    gaps: list[Gap], explained: list[Interval], stops: list[tuple[DeclaredStop, Interval]], min_gap: timedelta
) -> list[Gap]:
    """The parts of gaps outside every explained stop; slivers of at most ``min_gap`` left at a
    stop's edge are the phone tap and the camera button not being the same second."""
    parts = []
    for gap in gaps:
        for part in subtract(Interval(gap.start, gap.end), explained):
            if part.seconds > min_gap.total_seconds():
                parts.append(Gap(part.start, part.end, part.seconds, _ids_overlapping(part, stops)))
    return parts


def _stops_with_footage(
    stops: list[tuple[DeclaredStop, Interval]], covered: list[Interval], window: Interval,
    min_gap: timedelta, tolerance: timedelta,
) -> list[tuple[str, float]]:
    """Declared stops the camera kept recording through (beyond clock tolerance and file jitter)."""
    found = []
    for stop, span in stops:
        inner = _clip(Interval(span.start + tolerance, span.end - tolerance), window)
        if inner is None:
            continue
        seconds = _overlap_seconds(inner, covered)
        if seconds > min_gap.total_seconds():
            found.append((stop.id, seconds))
    return found


def camera_coverage(
    camera_serial: str,
    window: Interval,
    segments: list[Interval],
    stops: list[DeclaredStop],
    *,
    min_gap: timedelta = DEFAULT_MIN_GAP,
    tolerance: timedelta = timedelta(0),
) -> CameraCoverage:
    """Art. 9 coverage of one camera over one activity window (arrival..departure).

    ``segments`` are this camera's footage ranges (any, they are clipped to the window); ``stops`` are
    the interruptions declared on the activity. Gaps are reported as found after tolerance;
    ``unexplained`` splits each gap so only the part outside explained stops counts, and a stop
    without an acceptable explanation explains nothing (its id still appears in ``explained_by``).
    """
    clipped = [part for part in (_clip(segment, window) for segment in segments) if part is not None]
    if not clipped:
        return CameraCoverage(camera_serial, window, 0.0, (), (), 0.0, (), True)
    covered = union(clipped)
    widened = sorted(
        ((stop, Interval(span.start - tolerance, span.end + tolerance))
         for stop in stops
         for span in [_stop_interval(stop, window)]),
        key=lambda pair: (pair[0].start, pair[0].id),
    )
    gaps = [
        Gap(gap.start, gap.end, gap.seconds, _ids_overlapping(gap, widened))
        for gap in _gaps(window, covered, min_gap, tolerance)
    ]
    explained = union(span for stop, span in widened if stop.explained)
    unexplained = _unexplained(gaps, explained, widened, min_gap)
    own_spans = [(stop, _stop_interval(stop, window)) for stop, _ in widened]
    return CameraCoverage(
        camera_serial=camera_serial,
        window=window,
        recorded_seconds=sum(part.seconds for part in covered),
        gaps=tuple(gaps),
        unexplained=tuple(unexplained),
        unexplained_seconds=sum(gap.seconds for gap in unexplained),
        stops_with_footage=tuple(_stops_with_footage(own_spans, covered, window, min_gap, tolerance)),
        no_footage=False,
    )


def covers(segments: list[Interval], at: datetime, tolerance: timedelta = DEFAULT_COVERS_TOLERANCE) -> bool:
    """Whether some segment covers the instant ``at`` give or take ``tolerance`` — "was this step
    (a photo, a signature) on camera"."""
    return any(segment.start - tolerance <= at <= segment.end + tolerance for segment in segments)
