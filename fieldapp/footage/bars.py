"""What the lead's case timeline draws for each visit: a time axis from arrival to departure (widened
to the footage), one row per body camera with its segments as bars, the gaps between them shaded
(red where nothing explains them, grey where a declared interruption does), the declared stops,
and a tick for each step. Plain numbers on a 0–1000 axis: the template draws them as SVG, which
needs no inline style (the content security policy allows none)."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ..compliance.checks import interruption_explained  # the one reading of "explained" (art. 9)
from ..compliance.facts import parse_time
from .coverage import DeclaredStop, Interval, camera_coverage
from . import linker
from .status import case_segments

WIDTH = 1000.0
ROW_HEIGHT = 28


@dataclass(frozen=True)
class Span:
    x: float
    w: float
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Bar(Span):
    segment_id: uuid.UUID = None  # type: ignore[assignment]
    file_name: str = ""
    seconds: float = 0.0
    flags: tuple[str, ...] = ()


@dataclass
class CameraRow:
    serial: str
    y: int
    bars: list[Bar] = field(default_factory=list)
    gaps: list[Span] = field(default_factory=list)  # not explained: red
    explained: list[Span] = field(default_factory=list)  # explained by a declared stop: grey
    stops: list[Span] = field(default_factory=list)


@dataclass
class Track:
    start: datetime
    end: datetime
    rows: list[CameraRow]
    ticks: list[tuple[float, str]]  # (x, step label)

    @property
    def height(self) -> int:
        return ROW_HEIGHT * len(self.rows) + 14


def _scale(start: datetime, end: datetime):
    total = max((end - start).total_seconds(), 1.0)

    def span(a: datetime, b: datetime) -> tuple[float, float]:
        x = (a - start).total_seconds() / total * WIDTH
        return round(x, 2), round(max((b - a).total_seconds() / total * WIDTH, 1.5), 2)
    return span


def track(activity_payload: dict, steps: list[dict], interruptions: list[tuple[str, dict, bool]],
          segments: list, tolerance: timedelta = timedelta(0)) -> Track | None:
    """The drawing of one visit. ``interruptions`` are (id, payload, explained); ``segments`` the
    linked FootageSegment rows."""
    arrived, departed = parse_time(activity_payload.get("arrived_at")), parse_time(activity_payload.get("departed_at"))
    if arrived is None or not segments:
        return None
    departed = departed or max(s.ended_at for s in segments)
    start, end = min([arrived, *(s.started_at for s in segments)]), max([departed, *(s.ended_at for s in segments)])
    span = _scale(start, end)
    serials = list(dict.fromkeys([s.camera_serial for s in segments]))
    rows = []
    for i, serial in enumerate(serials):
        mine = sorted((s for s in segments if s.camera_serial == serial), key=lambda s: s.started_at)
        row = CameraRow(serial, i * ROW_HEIGHT)
        for seg in mine:
            row.bars.append(Bar(*span(seg.started_at, seg.ended_at), seg.started_at, seg.ended_at, seg.id,
                                seg.file_name, (seg.ended_at - seg.started_at).total_seconds(), tuple(seg.flags or ())))
        stops = [DeclaredStop(sid, parse_time(p["stopped_at"]), parse_time(p.get("resumed_at")), ok)
                 for sid, p, ok in interruptions if p.get("camera_id") == serial and parse_time(p.get("stopped_at"))]
        if departed - arrived > 2 * tolerance:
            # The window the art. 9 check measures (checks.footage_coverage): what is drawn red is
            # what the finding counts, not the clocks' disagreement at arrival and departure.
            window = Interval(arrived + tolerance, departed - tolerance)
            cov = camera_coverage(serial, window, [Interval(s.started_at, s.ended_at) for s in mine], stops)
            unexplained = {(g.start, g.end) for g in cov.unexplained}
            row.gaps = [Span(*span(a, b), a, b) for a, b in sorted(unexplained)]
            row.explained = [Span(*span(g.start, g.end), g.start, g.end) for g in cov.gaps
                             if (g.start, g.end) not in unexplained]
        row.stops = [Span(*span(st.start, st.end or departed), st.start, st.end or departed) for st in stops]
        rows.append(row)
    ticks = []
    for p in steps:
        at = parse_time(p.get("at"))
        if at is not None and start <= at <= end:
            ticks.append((span(at, at)[0], str(p.get("step_type") or "")))
    return Track(start, end, rows, ticks)


def case_tracks(case_id: uuid.UUID, blocks) -> dict[uuid.UUID, Track]:
    """The drawing of every visit of the case's timeline that has footage linked."""
    by_activity: dict[uuid.UUID, list] = {}
    for segment, activity_ids in case_segments(case_id):
        for activity_id in activity_ids:
            by_activity.setdefault(activity_id, []).append(segment)
    tracks = {}
    for block in blocks:
        activity = block.activity
        segments = by_activity.get(activity.record.id)
        if not segments:
            continue
        live = [e for e in block.items if not e.withdrawn]
        drawn = track(activity.payload, [e.payload for e in live if e.record.record_type in ("step", "service")],
                      [(str(e.record.id), e.payload, interruption_explained(e.payload)) for e in live
                       if e.record.record_type == "interruption"], segments, linker.tolerance())
        if drawn is not None:
            tracks[activity.record.id] = drawn
    return tracks
