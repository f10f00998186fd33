"""Linking body-camera footage to visits: each case is something a lead would notice on the review
page — footage on the wrong visit, or a visit that shows no footage although the camera was on."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fieldapp.footage.linking import (
    ActivityWindow,
    Handout,
    Link,
    SegmentWindow,
    link_segments,
    linked_share,
    suggestions,
)

DAY = datetime(2026, 3, 9, tzinfo=UTC)
ZHANG, LI, WANG = "33010020230001", "33010020230002", "33010020230003"
CAM_A, CAM_B = "DSJ-A001", "DSJ-B002"


def at(hhmm: str, seconds: int = 0) -> datetime:
    hours, minutes = hhmm.split(":")
    return DAY + timedelta(hours=int(hours), minutes=int(minutes), seconds=seconds)


def seg(id_: str, start: datetime, end: datetime, camera: str = CAM_A, officer: str | None = None) -> SegmentWindow:
    return SegmentWindow(id_, camera, officer, start, end)


def visit(id_: str, start: datetime, end: datetime | None, officers=(ZHANG,), cameras=()) -> ActivityWindow:
    return ActivityWindow(id_, start, end, frozenset(officers), frozenset(cameras))


def pairs(links: list[Link]) -> set[tuple[str, str, str]]:
    return {(link.segment_id, link.activity_id, link.basis) for link in links}


# (why, segments, handouts, activities, expected (segment, activity, basis) triples)
CASES = [
    (
        "declared camera links",
        [seg("s1", at("09:10"), at("09:20"))],
        [],
        [visit("v1", at("09:00"), at("10:00"), officers=(LI,), cameras=(CAM_A,))],
        {("s1", "v1", "camera_declared")},
    ),
    (
        "hand-out register ties the camera to the officer on the visit",
        [seg("s1", at("09:10"), at("09:20"))],
        [Handout(CAM_A, ZHANG, at("08:00"), at("18:00"))],
        [visit("v1", at("09:00"), at("10:00"))],
        {("s1", "v1", "handout")},
    ),
    (
        "camera handed to another officer at noon: afternoon footage goes to the second officer only",
        [seg("am", at("09:10"), at("09:20")), seg("pm", at("14:10"), at("14:20"))],
        [Handout(CAM_A, ZHANG, at("08:00"), at("12:00")), Handout(CAM_A, LI, at("12:00"), None)],
        [
            visit("zhang-am", at("09:00"), at("10:00"), officers=(ZHANG,)),
            visit("zhang-pm", at("14:00"), at("15:00"), officers=(ZHANG,)),
            visit("li-pm", at("14:00"), at("15:00"), officers=(LI,)),
        ],
        {("am", "zhang-am", "handout"), ("pm", "li-pm", "handout")},
    ),
    (
        "station officer number links when nothing else is known",
        [seg("s1", at("09:10"), at("09:20"), officer=ZHANG)],
        [],
        [visit("v1", at("09:00"), at("10:00"))],
        {("s1", "v1", "station_officer")},
    ),
    (
        "blank station officer number links nothing",
        [seg("s1", at("09:10"), at("09:20"), officer="  ")],
        [],
        [visit("v1", at("09:00"), at("10:00"), officers=("  ", ""))],
        set(),
    ),
    (
        "the strongest basis wins when several apply",
        [seg("s1", at("09:10"), at("09:20"), officer=ZHANG)],
        [Handout(CAM_A, ZHANG, at("08:00"), at("18:00"))],
        [visit("v1", at("09:00"), at("10:00"), cameras=(CAM_A,)), visit("v2", at("09:30"), at("09:40"))],
        {("s1", "v1", "camera_declared")},
    ),
    (
        "camera clock 90 s ahead: segment starting 90 s after departure still links (2 min tolerance)",
        [seg("s1", at("10:01", 30), at("10:05"))],
        [],
        [visit("v1", at("09:00"), at("10:00"), cameras=(CAM_A,))],
        {("s1", "v1", "camera_declared")},
    ),
    (
        "camera clock 90 s behind: segment ending 90 s before arrival still links",
        [seg("s1", at("08:50"), at("08:58", 30))],
        [],
        [visit("v1", at("09:00"), at("10:00"), cameras=(CAM_A,))],
        {("s1", "v1", "camera_declared")},
    ),
    (
        "3 min after departure is outside the tolerance",
        [seg("s1", at("10:03"), at("10:10"))],
        [],
        [visit("v1", at("09:00"), at("10:00"), cameras=(CAM_A,))],
        set(),
    ),
    (
        "a segment spanning two consecutive visits links to both",
        [seg("s1", at("09:50"), at("10:20"))],
        [Handout(CAM_A, ZHANG, at("08:00"), at("18:00"))],
        [visit("v1", at("09:00"), at("10:00")), visit("v2", at("10:05"), at("11:00"))],
        {("s1", "v1", "handout"), ("s1", "v2", "handout")},
    ),
    (
        "another officer's camera recording at the same time does not link",
        [seg("s1", at("09:10"), at("09:20"), camera=CAM_B, officer=WANG)],
        [Handout(CAM_B, WANG, at("08:00"), at("18:00")), Handout(CAM_A, ZHANG, at("08:00"), at("18:00"))],
        [visit("v1", at("09:00"), at("10:00"), officers=(ZHANG, LI), cameras=(CAM_A,))],
        set(),
    ),
    (
        "hand-out outside the segment's time does not tie the camera",
        [seg("s1", at("09:10"), at("09:20"))],
        [Handout(CAM_A, ZHANG, at("12:00"), at("18:00"))],
        [visit("v1", at("09:00"), at("10:00"))],
        set(),
    ),
    (
        "an accompanying officer (not the author) carrying the camera links the visit",
        [seg("s1", at("09:10"), at("09:20"))],
        [Handout(CAM_A, LI, at("08:00"), None)],
        [visit("v1", at("09:00"), at("10:00"), officers=(ZHANG, LI))],
        {("s1", "v1", "handout")},
    ),
    (
        "open-ended visit (still on site) covers the next 12 hours, not beyond",
        [seg("s1", at("15:00"), at("15:10")), seg("s2", at("21:03"), at("21:30"))],
        [],
        [visit("v1", at("09:00"), None, cameras=(CAM_A,))],
        {("s1", "v1", "camera_declared")},
    ),
]


@pytest.mark.parametrize(("why", "segments", "handouts", "activities", "expected"), CASES, ids=[c[0] for c in CASES])
def test_link_segments(why, segments, handouts, activities, expected):
    assert pairs(link_segments(segments, handouts, activities)) == expected


def test_tolerance_and_open_ended_are_parameters():
    segment = [seg("s1", at("10:03"), at("10:10"))]
    closed = [visit("v1", at("09:00"), at("10:00"), cameras=(CAM_A,))]
    assert link_segments(segment, [], closed, tolerance=timedelta(minutes=5))
    assert not link_segments(segment, [], closed, tolerance=timedelta(0))
    open_ = [visit("v1", at("09:00"), None, cameras=(CAM_A,))]
    assert not link_segments(segment, [], open_, open_ended=timedelta(minutes=30))


def test_links_are_ordered_by_segment_then_activity():
    segments = [seg("s2", at("09:10"), at("09:20")), seg("s1", at("09:10"), at("09:20"))]
    activities = [visit(v, at("09:00"), at("10:00"), cameras=(CAM_A,)) for v in ("v3", "v1", "v2")]
    links = link_segments(segments, [], activities)
    assert [(link.segment_id, link.activity_id) for link in links] == [
        (s, v) for s in ("s1", "s2") for v in ("v1", "v2", "v3")
    ]


def test_one_long_visit_does_not_hide_short_ones_from_the_index():
    """The index bounds its scan by the longest activity; a long one must not make short ones vanish."""
    activities = [visit("long", at("00:00"), at("23:00"), cameras=(CAM_A,))] + [
        visit(f"v{h:02d}", at(f"{h:02d}:00"), at(f"{h:02d}:30"), cameras=(CAM_A,)) for h in range(8, 18)
    ]
    links = link_segments([seg("s1", at("12:10"), at("12:20"))], [], activities)
    assert {link.activity_id for link in links} == {"long", "v12"}


def test_suggestions_rank_same_officer_nearest_first_then_camera_then_nearby():
    segment = seg("s1", at("12:40"), at("12:50"))  # over lunch, linked to nothing
    handouts = [Handout(CAM_A, ZHANG, at("08:00"), at("18:00"))]
    activities = [
        visit("zhang-far", at("08:00"), at("09:00")),                          # 3h40 before
        visit("zhang-near", at("13:00"), at("14:00")),                         # 10 min after
        visit("declares-cam", at("12:55"), at("13:30"), officers=(LI,), cameras=(CAM_A,)),  # 5 min after
        visit("li-overlap", at("12:30"), at("13:00"), officers=(LI,)),         # overlapping
        visit("wang-next-week", DAY + timedelta(days=7), DAY + timedelta(days=7, hours=1), officers=(WANG,)),
    ]
    ranked = suggestions(segment, handouts, activities)
    assert ranked == [
        ("zhang-near", 600.0),
        ("zhang-far", 13200.0),
        ("declares-cam", 300.0),
        ("li-overlap", 0.0),
    ]  # nothing a week away from someone unrelated
    assert suggestions(segment, handouts, activities, limit=2) == ranked[:2]


def test_suggestions_use_the_station_officer_when_there_is_no_handout():
    segment = seg("s1", at("12:40"), at("12:50"), officer=LI)
    activities = [visit("zhang", at("12:30"), at("13:00")), visit("li", at("15:00"), at("16:00"), officers=(LI,))]
    assert [activity_id for activity_id, _ in suggestions(segment, [], activities)] == ["li", "zhang"]


def test_suggestions_list_each_activity_once():
    segment = seg("s1", at("12:40"), at("12:50"), officer=ZHANG)
    activities = [visit("both", at("13:00"), at("14:00"), officers=(ZHANG,), cameras=(CAM_A,))]
    assert suggestions(segment, [Handout(CAM_A, ZHANG, at("08:00"), None)], activities) == [("both", 600.0)]


@pytest.mark.parametrize(
    ("segment_ids", "linked_ids", "share"),
    [
        (["s1", "s2", "s3", "s4"], ["s1", "s1", "s3"], 0.5),  # two links for s1 count once
        (["s1"], ["s1"], 1.0),
        (["s1", "s2"], [], 0.0),
        (["s1"], ["gone"], 0.0),  # a link to a segment not in the set does not count
        ([], [], 0.0),  # no footage uploaded: 0, never a reassuring 100 %
    ],
)
def test_linked_share(segment_ids, linked_ids, share):
    segments = [seg(s, at("09:00"), at("09:10")) for s in segment_ids]
    links = [Link(s, "v1", "handout") for s in linked_ids]
    assert linked_share(segments, links) == share
