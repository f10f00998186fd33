"""Footage under an art. 29 grant: a view plays a marked preview, a copy is the whole recording
marked with the viewer, time and grant number on every frame and in its metadata, and the station's
important mark keeps the segment for ever (art. 26)."""
from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import av
import pytest

from fieldapp.models import AccessUse, FootageSegment, RetentionState
from tests.support.flows import post_form, run_cli
from tests.support.records_world import build, one, rows, select
from tests.support.station_export import ExportRow, write_manifest
from tests.support.videos import make_video

START = (datetime.now(UTC) - timedelta(days=2)).replace(microsecond=0)


@pytest.fixture
def footage_world(sqlite_url, tmp_path):
    world = build(sqlite_url, tmp_path / "var")
    export = tmp_path / "export"
    export.mkdir()
    make_video(export / "a.mp4", 2, start=START, size=(160, 120), fps=10)
    write_manifest(export, [ExportRow("a.mp4", "DSJ-9", START, START + timedelta(seconds=2), unit_code="ZF1",
                                      important=True)])
    result = run_cli(world.app, "footage-import", str(export), "--unit", "ZF1")
    assert result.exit_code == 0, result.output
    yield world, one(world.app, select(FootageSegment))
    world.app.extensions["fieldapp.engine"].dispose()


def comment(data: bytes) -> str:
    with av.open(io.BytesIO(data)) as container:
        return container.metadata.get("comment", "")


def frames(data: bytes) -> int:
    with av.open(io.BytesIO(data)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_a_grant_on_footage_views_and_copies_it_marked(footage_world):
    world, segment = footage_world
    kept = one(world.app, select(RetentionState).where(RetentionState.hash == segment.hash))
    assert kept.klass == "permanent" and "station_important" in {r["rule"] for r in kept.reasons}
    made = post_form(world.client("孙管理"), "/records/access", {
        "subject_kind": "segment", "subject_id": str(segment.id), "mode": "copy",
        "purpose": "reconsideration_litigation", "requester_id": str(world.users["法规科"]), "days": "3"})
    grant_id = made.headers["Location"].rsplit("/", 1)[1]
    post_form(world.client("分管局长"), f"/records/access/{grant_id}/decide", {"decision": "approve"})
    page = world.client("法规科").get(f"/records/access/{grant_id}").get_data(as_text=True)
    assert segment.hash in page
    viewed = world.client("法规科").get(f"/records/access/{grant_id}/view/{segment.alg}/{segment.hash}")
    assert viewed.status_code == 200 and viewed.mimetype == "video/mp4"
    assert "法规科" in comment(viewed.data)
    copied = post_form(world.client("孙管理"), f"/records/access/{grant_id}/copy/{segment.alg}/{segment.hash}", {})
    assert copied.status_code == 200 and "attachment" in copied.headers["Content-Disposition"]
    assert "孙管理" in comment(copied.data) and "FZ-" in comment(copied.data)
    assert abs(frames(copied.data) - 20) <= 1  # the whole recording, not a preview
    uses = rows(world.app, select(AccessUse).order_by(AccessUse.id))
    assert [u.action for u in uses] == ["view", "copy"] and uses[1].copy_sha256
