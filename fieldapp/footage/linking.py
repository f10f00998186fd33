"""Linking body-camera footage segments (执法记录仪视频) to the on-site activities they record.

A segment arrives from the docking station as (camera serial, officer number as the station saw it,
start, end); an activity is logged on a phone with arrival/departure, the officers present and the
cameras they declared. Nothing ties a file to a visit except time and *who had the camera*, so a
segment links to an activity when

* their time ranges overlap once the activity is widened by ``tolerance`` on both sides (camera and
  phone clocks drift by a minute or two), and
* the camera is tied to the activity by one of, strongest first:

  ``camera_declared``  the activity declares the segment's camera serial;
  ``handout``          per the hand-out log the camera was carried, at some instant of the overlap,
                       by one of the activity's officers;
  ``station_officer``  the station recorded an officer number that is one of the activity's officers.

Hand-out times are compared exactly (no tolerance): when a camera passes from one officer to another
at noon, footage at 12:30 belongs to the second officer only.

Everything here is pure — plain values in, plain values out, all datetimes aware UTC — so the same
functions serve the ingest job, the lead's review page and the benchmark. Lookups go through small
interval indexes (sorted by start, bisect plus a maximum-span bound), never all pairs: 10,000
segments against 5,000 activities link in a fraction of a second.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = [
    "BASES",
    "ActivityWindow",
    "Handout",
    "Link",
    "SegmentWindow",
    "link_segments",
    "linked_share",
    "suggestions",
]

#: Why a segment linked, strongest first; a pair linked for several reasons keeps the first.
BASES = ("camera_declared", "handout", "station_officer")
_RANK = {basis: rank for rank, basis in enumerate(BASES)}

DEFAULT_TOLERANCE = timedelta(minutes=2)
DEFAULT_OPEN_ENDED = timedelta(hours=12)
SUGGESTION_HORIZON = timedelta(hours=24)


@dataclass(frozen=True)
class SegmentWindow:
    """One footage file as the docking station reported it."""

    id: str
    camera_serial: str
    officer_no: str | None  # as the station recorded it (may be empty/None)
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Handout:
    """Who carried a camera, from the hand-out register or the phone."""

    camera_serial: str
    cert_no: str  # officer's enforcement certificate number
    start: datetime
    end: datetime | None  # None = still carried


@dataclass(frozen=True)
class ActivityWindow:
    """An on-site activity (visit) as logged on the phone."""

    id: str
    start: datetime  # arrival
    end: datetime | None  # departure; None = still on site (counted as start + open_ended)
    officer_certs: frozenset[str]  # author + accompanying officers
    camera_serials: frozenset[str]  # cameras declared on the activity


@dataclass(frozen=True)
class Link:
    """A segment recorded (part of) an activity, and the strongest reason we believe it."""

    segment_id: str
    activity_id: str
    basis: str  # one of BASES


# --------------------------------------------------------------------------- interval index


class _IntervalIndex:
    """Items with a closed range [lo, hi], found by overlap with a query range.

    Sorted by ``lo``; a query bisects for ``lo <= q_hi`` and, since no item spans more than
    ``max_span``, starts no earlier than ``q_lo - max_span``. One long item (an open-ended visit)
    only widens the scan, it never makes the answer wrong.
    """

    __slots__ = ("_los", "_items", "_max_span")

    def __init__(self, entries: Iterable[tuple[datetime, datetime, object]]):
        ordered = sorted(entries, key=lambda e: e[0])
        self._los = [lo for lo, _, _ in ordered]
        self._items = ordered
        self._max_span = max((hi - lo for lo, hi, _ in ordered), default=timedelta(0))

    def overlapping(self, q_lo: datetime, q_hi: datetime) -> Iterator[tuple[datetime, datetime, object]]:
        """Items sharing at least one instant with [q_lo, q_hi]."""
        first = bisect_left(self._los, q_lo - self._max_span)
        last = bisect_right(self._los, q_hi)
        for entry in self._items[first:last]:
            if entry[1] >= q_lo:
                yield entry


def _activity_end(activity: ActivityWindow, open_ended: timedelta) -> datetime:
    """Departure, or arrival + open_ended for an officer still on site; never before arrival."""
    end = activity.end if activity.end is not None else activity.start + open_ended
    return max(end, activity.start)


def _index_activities(
    activities: Iterable[ActivityWindow], tolerance: timedelta, open_ended: timedelta
) -> tuple[dict[str, _IntervalIndex], dict[str, _IntervalIndex]]:
    """Activities by declared camera serial and by officer cert_no, each over its widened range."""
    by_camera: dict[str, list] = defaultdict(list)
    by_cert: dict[str, list] = defaultdict(list)
    for activity in activities:
        entry = (activity.start - tolerance, _activity_end(activity, open_ended) + tolerance, activity)
        for serial in activity.camera_serials:
            by_camera[serial].append(entry)
        for cert in activity.officer_certs:
            by_cert[cert].append(entry)
    return (
        {key: _IntervalIndex(entries) for key, entries in by_camera.items()},
        {key: _IntervalIndex(entries) for key, entries in by_cert.items()},
    )


class _HandoutIndex:
    """Hand-outs per camera; open-ended ones (still carried) kept apart so they don't defeat the
    maximum-span bound of the closed ones."""

    def __init__(self, handouts: Iterable[Handout]):
        closed: dict[str, list] = defaultdict(list)
        self._open: dict[str, list[Handout]] = defaultdict(list)
        for handout in handouts:
            if handout.end is None:
                self._open[handout.camera_serial].append(handout)
            else:
                closed[handout.camera_serial].append((handout.start, max(handout.end, handout.start), handout))
        self._closed = {serial: _IntervalIndex(entries) for serial, entries in closed.items()}

    def carriers(self, serial: str, start: datetime, end: datetime) -> Iterator[tuple[str, datetime, datetime]]:
        """(cert_no, from, to): who carried the camera during [start, end], clipped to it."""
        index = self._closed.get(serial)
        if index is not None:
            for lo, hi, handout in index.overlapping(start, end):
                yield handout.cert_no, max(lo, start), min(hi, end)
        for handout in self._open.get(serial, ()):
            if handout.start <= end:
                yield handout.cert_no, max(handout.start, start), end


def _station_officer(segment: SegmentWindow) -> str | None:
    """The station's officer number, or None when it recorded none (blank counts as none)."""
    officer = (segment.officer_no or "").strip()
    return officer or None


# --------------------------------------------------------------------------- linking


def _segment_bases(
    segment: SegmentWindow,
    by_camera: dict[str, _IntervalIndex],
    by_cert: dict[str, _IntervalIndex],
    handouts: _HandoutIndex,
) -> dict[str, int]:
    """activity id -> rank of the strongest basis linking this segment to it."""
    found: dict[str, int] = {}

    def note(index: _IntervalIndex | None, lo: datetime, hi: datetime, rank: int) -> None:
        if index is None:
            return
        for _, _, activity in index.overlapping(lo, hi):
            if found.get(activity.id, len(BASES)) > rank:
                found[activity.id] = rank

    start, end = segment.start, max(segment.end, segment.start)
    note(by_camera.get(segment.camera_serial), start, end, _RANK["camera_declared"])
    for cert, carried_from, carried_to in handouts.carriers(segment.camera_serial, start, end):
        note(by_cert.get(cert), carried_from, carried_to, _RANK["handout"])
    officer = _station_officer(segment)
    if officer is not None:
        note(by_cert.get(officer), start, end, _RANK["station_officer"])
    return found


def link_segments(
    segments: Iterable[SegmentWindow],
    handouts: Iterable[Handout],
    activities: Iterable[ActivityWindow],
    tolerance: timedelta = DEFAULT_TOLERANCE,
    open_ended: timedelta = DEFAULT_OPEN_ENDED,
) -> list[Link]:
    """Every (segment, activity) pair the footage records, one :class:`Link` each with its
    strongest basis, ordered by (segment id, activity id) so reruns diff cleanly.

    A segment spanning two consecutive visits links to both: the lead decides which part is which.
    """
    by_camera, by_cert = _index_activities(activities, tolerance, open_ended)
    handout_index = _HandoutIndex(handouts)
    links = []
    for segment in segments:
        for activity_id, rank in _segment_bases(segment, by_camera, by_cert, handout_index).items():
            links.append(Link(segment.id, activity_id, BASES[rank]))
    links.sort(key=lambda link: (link.segment_id, link.activity_id))
    return links


# --------------------------------------------------------------------------- suggestions


def _distance_seconds(lo: datetime, hi: datetime, other_lo: datetime, other_hi: datetime) -> float:
    """Seconds between two closed ranges; 0 when they share an instant."""
    if other_hi < lo:
        return (lo - other_hi).total_seconds()
    if hi < other_lo:
        return (other_lo - hi).total_seconds()
    return 0.0


def _segment_officers(segment: SegmentWindow, handouts: Iterable[Handout]) -> set[str]:
    """Whoever had the camera while it recorded: hand-outs overlapping the segment, plus the
    station's officer number."""
    officers = {
        handout.cert_no
        for handout in handouts
        if handout.camera_serial == segment.camera_serial
        and handout.start <= segment.end
        and (handout.end is None or handout.end >= segment.start)
    }
    station = _station_officer(segment)
    if station is not None:
        officers.add(station)
    return officers


def suggestions(
    segment: SegmentWindow,
    handouts: Iterable[Handout],
    activities: Iterable[ActivityWindow],
    limit: int = 5,
    *,
    open_ended: timedelta = DEFAULT_OPEN_ENDED,
    horizon: timedelta = SUGGESTION_HORIZON,
) -> list[tuple[str, float]]:
    """Where an unlinked segment most likely belongs, for the lead to pick from:
    ``[(activity id, distance in seconds), ...]``, distance 0 when the ranges overlap.

    Ranked in tiers, each by distance (then id): first activities of the officer who had the camera
    (hand-out at the segment's time, or the station's officer number) — a wrong camera clock can put
    these far away, so they are not bounded; then activities declaring the camera (also unbounded);
    then any activity within ``horizon`` (24 h). No activity appears twice; at most ``limit``.
    """
    if limit <= 0:
        return []
    officers = _segment_officers(segment, handouts)
    seg_lo, seg_hi = segment.start, max(segment.end, segment.start)
    tiers: list[list[tuple[float, str]]] = [[], [], []]
    horizon_seconds = horizon.total_seconds()
    for activity in activities:
        distance = _distance_seconds(seg_lo, seg_hi, activity.start, _activity_end(activity, open_ended))
        if officers & activity.officer_certs:
            tiers[0].append((distance, activity.id))
        elif segment.camera_serial in activity.camera_serials:
            tiers[1].append((distance, activity.id))
        elif distance <= horizon_seconds:
            tiers[2].append((distance, activity.id))
    ranked: list[tuple[str, float]] = []
    seen: set[str] = set()
    for tier in tiers:
        for distance, activity_id in sorted(tier):
            if activity_id not in seen:
                seen.add(activity_id)
                ranked.append((activity_id, distance))
                if len(ranked) == limit:
                    return ranked
    return ranked


def linked_share(segments: Iterable[SegmentWindow], links: Iterable[Link]) -> float:
    """Share (0..1) of segments with at least one link — the lead's "how much footage is placed".

    Returns 0.0 when there are no segments: nothing has been placed, and a dashboard showing 100 %
    for a station that never uploaded would hide exactly the problem it should show.
    """
    ids = {segment.id for segment in segments}
    if not ids:
        return 0.0
    linked = {link.segment_id for link in links} & ids
    return len(linked) / len(ids)
