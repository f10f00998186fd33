"""Art. 9 continuous recording from real footage: what a lead sees as a gap, what a declared stop
explains, and what is not a breach at all."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fieldapp.footage.coverage import (
    DeclaredStop,
    Gap,
    Interval,
    camera_coverage,
    covers,
    subtract,
    union,
)

DAY = datetime(2026, 3, 9, tzinfo=UTC)
CAM = "DSJ-A001"


def t(hhmm: str, seconds: float = 0) -> datetime:
    hours, minutes = hhmm.split(":")
    return DAY + timedelta(hours=int(hours), minutes=int(minutes), seconds=seconds)


def iv(a: str, b: str) -> Interval:
    return Interval(t(a), t(b))


WINDOW = iv("09:00", "10:00")


def spans(gaps) -> list[tuple[datetime, datetime]]:
    return [(gap.start, gap.end) for gap in gaps]


# ---------------------------------------------------------------- union / subtract

UNION_CASES = [
    ("empty", [], []),
    ("disjoint, unsorted", [iv("10:00", "10:10"), iv("09:00", "09:10")], [iv("09:00", "09:10"), iv("10:00", "10:10")]),
    ("touching merge", [iv("09:00", "09:10"), iv("09:10", "09:20")], [iv("09:00", "09:20")]),
    ("overlapping merge", [iv("09:00", "09:15"), iv("09:10", "09:20")], [iv("09:00", "09:20")]),
    ("contained", [iv("09:00", "09:30"), iv("09:10", "09:20")], [iv("09:00", "09:30")]),
    ("zero-length and inverted dropped", [iv("09:05", "09:05"), iv("09:20", "09:10")], []),
    ("zero-length does not bridge", [iv("09:00", "09:10"), iv("09:10", "09:10"), iv("09:11", "09:20")],
     [iv("09:00", "09:10"), iv("09:11", "09:20")]),
]


@pytest.mark.parametrize(("why", "intervals", "merged"), UNION_CASES, ids=[c[0] for c in UNION_CASES])
def test_union(why, intervals, merged):
    assert union(intervals) == merged


SUBTRACT_CASES = [
    ("nothing covered", [], [WINDOW]),
    ("fully covered", [iv("08:00", "11:00")], []),
    ("hole in the middle", [iv("09:00", "09:20"), iv("09:30", "10:00")], [iv("09:20", "09:30")]),
    ("uncovered edges", [iv("09:10", "09:50")], [iv("09:00", "09:10"), iv("09:50", "10:00")]),
    ("coverage outside the window ignored", [iv("08:00", "08:30"), iv("10:30", "11:00")], [WINDOW]),
    ("unsorted overlapping cover", [iv("09:40", "10:00"), iv("09:00", "09:20"), iv("09:15", "09:30")],
     [iv("09:30", "09:40")]),
    ("straddling both ends", [iv("08:50", "09:05"), iv("09:55", "10:10")], [iv("09:05", "09:55")]),
]


@pytest.mark.parametrize(("why", "covered", "left"), SUBTRACT_CASES, ids=[c[0] for c in SUBTRACT_CASES])
def test_subtract(why, covered, left):
    assert subtract(WINDOW, covered) == left


def test_subtract_from_an_empty_window_leaves_nothing():
    assert subtract(iv("09:00", "09:00"), []) == []


# ---------------------------------------------------------------- camera_coverage


def test_full_recording_has_no_gaps():
    cov = camera_coverage(CAM, WINDOW, [iv("08:58", "09:30"), iv("09:30", "10:02")], [])
    assert (cov.gaps, cov.unexplained, cov.unexplained_seconds, cov.no_footage) == ((), (), 0.0, False)
    assert cov.recorded_seconds == 3600.0
    assert (cov.camera_serial, cov.window) == (CAM, WINDOW)


def test_gaps_without_declared_stops_are_unexplained():
    cov = camera_coverage(CAM, WINDOW, [iv("09:05", "09:20"), iv("09:30", "10:00")], [])
    assert spans(cov.gaps) == [(t("09:00"), t("09:05")), (t("09:20"), t("09:30"))]
    assert cov.unexplained == cov.gaps
    assert cov.unexplained_seconds == 900.0
    assert cov.recorded_seconds == 2700.0
    assert all(gap.explained_by == () for gap in cov.gaps)


def test_an_explained_stop_covering_the_gap_explains_it():
    stop = DeclaredStop("st1", t("09:19"), t("09:31"), explained=True)
    cov = camera_coverage(CAM, WINDOW, [iv("09:00", "09:20"), iv("09:30", "10:00")], [stop])
    assert cov.gaps == (Gap(t("09:20"), t("09:30"), 600.0, ("st1",)),)
    assert (cov.unexplained, cov.unexplained_seconds) == ((), 0.0)


def test_an_explained_stop_covering_half_the_gap_leaves_the_other_half_unexplained():
    stop = DeclaredStop("st1", t("09:20"), t("09:25"), explained=True)
    cov = camera_coverage(CAM, WINDOW, [iv("09:00", "09:20"), iv("09:30", "10:00")], [stop])
    assert cov.gaps == (Gap(t("09:20"), t("09:30"), 600.0, ("st1",)),)
    assert cov.unexplained == (Gap(t("09:25"), t("09:30"), 300.0, ()),)
    assert cov.unexplained_seconds == 300.0


def test_an_unexplained_stop_explains_nothing_but_is_named_on_the_gap():
    stop = DeclaredStop("st1", t("09:20"), t("09:30"), explained=False)
    cov = camera_coverage(CAM, WINDOW, [iv("09:00", "09:20"), iv("09:30", "10:00")], [stop])
    assert cov.unexplained == (Gap(t("09:20"), t("09:30"), 600.0, ("st1",)),)
    assert cov.unexplained_seconds == 600.0


def test_a_stop_never_resumed_runs_to_departure():
    stop = DeclaredStop("st1", t("09:40"), None, explained=True)
    cov = camera_coverage(CAM, WINDOW, [iv("09:00", "09:40")], [stop])
    assert spans(cov.gaps) == [(t("09:40"), t("10:00"))]
    assert cov.unexplained == ()


def test_footage_running_through_a_declared_stop_is_an_inconsistency_not_a_gap():
    stop = DeclaredStop("st1", t("09:20"), t("09:30"), explained=True)
    cov = camera_coverage(CAM, WINDOW, [iv("09:00", "09:25"), iv("09:25", "10:00")], [stop])
    assert cov.gaps == () and cov.unexplained == ()
    assert cov.stops_with_footage == (("st1", 600.0),)


def test_footage_in_part_of_a_stop_counts_only_that_part():
    stop = DeclaredStop("st1", t("09:20"), t("09:30"), explained=True)
    cov = camera_coverage(CAM, WINDOW, [iv("09:00", "09:22"), iv("09:30", "10:00")], [stop])
    assert cov.stops_with_footage == (("st1", 120.0),)
    assert cov.unexplained == ()


def test_no_segments_at_all_is_footage_not_yet_ingested_not_a_gap():
    stop = DeclaredStop("st1", t("09:20"), t("09:30"), explained=False)
    for segments in ([], [iv("07:00", "08:00"), iv("10:00", "11:00")]):  # none, or only outside the visit
        cov = camera_coverage(CAM, WINDOW, segments, [stop])
        assert cov.no_footage is True
        assert (cov.gaps, cov.unexplained, cov.unexplained_seconds, cov.recorded_seconds) == ((), (), 0.0, 0.0)
        assert cov.stops_with_footage == ()


def test_half_second_file_boundaries_are_not_gaps():
    files = [Interval(t("09:00"), t("09:20")), Interval(t("09:20", 0.5), t("09:40")),
             Interval(t("09:40", 0.5), t("10:00"))]
    cov = camera_coverage(CAM, WINDOW, files, [])
    assert cov.gaps == () and cov.unexplained_seconds == 0.0
    assert cov.recorded_seconds == 3599.0
    assert camera_coverage(CAM, WINDOW, files, [], min_gap=timedelta(0)).unexplained_seconds == 1.0


def test_a_sliver_left_at_the_edge_of_an_explained_stop_is_not_unexplained():
    stop = DeclaredStop("st1", t("09:20", 0.5), t("09:30"), explained=True)  # tapped half a second late
    cov = camera_coverage(CAM, WINDOW, [iv("09:00", "09:20"), iv("09:30", "10:00")], [stop])
    assert cov.unexplained == ()


TOLERANCE = timedelta(minutes=2)


def test_tolerance_hides_a_gap_that_is_only_clock_drift():
    # camera started 90 s after the phone logged arrival: within 2 min drift, not a gap
    cov = camera_coverage(CAM, WINDOW, [Interval(t("09:01", 30), t("10:00"))], [], tolerance=TOLERANCE)
    assert cov.gaps == ()
    assert camera_coverage(CAM, WINDOW, [Interval(t("09:01", 30), t("10:00"))], []).unexplained_seconds == 90.0


def test_tolerance_shrinks_a_real_gap_at_both_ends():
    cov = camera_coverage(CAM, WINDOW, [iv("09:00", "09:20"), iv("09:30", "10:00")], [], tolerance=TOLERANCE)
    assert cov.gaps == (Gap(t("09:22"), t("09:28"), 360.0, ()),)
    assert cov.unexplained_seconds == 360.0


def test_tolerance_lets_a_drifted_stop_explain_and_ignores_drift_footage_in_it():
    # phone clock 1 min ahead of the camera: the declared stop reads 09:21-09:31, the gap is 09:20-09:30
    stop = DeclaredStop("st1", t("09:21"), t("09:31"), explained=True)
    segments = [iv("09:00", "09:20"), iv("09:30", "10:00")]
    assert camera_coverage(CAM, WINDOW, segments, [stop]).unexplained_seconds == 60.0
    cov = camera_coverage(CAM, WINDOW, segments, [stop], tolerance=TOLERANCE)
    assert cov.unexplained == () and cov.stops_with_footage == ()


# ---------------------------------------------------------------- covers


@pytest.mark.parametrize(
    ("instant", "tolerance", "expected"),
    [
        (t("09:10"), timedelta(minutes=2), True),  # inside
        (t("09:20"), timedelta(0), True),  # at the end, inclusive
        (t("09:21", 30), timedelta(minutes=2), True),  # 90 s past the end, within drift
        (t("09:23"), timedelta(minutes=2), False),  # 3 min past
        (t("09:25"), timedelta(minutes=2), False),  # in the hole between files
        (t("08:58", 30), timedelta(minutes=2), True),  # 90 s before the first file
        (t("09:21", 30), timedelta(0), False),
    ],
)
def test_covers(instant, tolerance, expected):
    assert covers([iv("09:00", "09:20"), iv("09:30", "10:00")], instant, tolerance) is expected


def test_covers_default_tolerance_is_two_minutes_and_no_footage_covers_nothing():
    assert covers([iv("09:00", "09:20")], t("09:22"))
    assert not covers([], t("09:10"))
