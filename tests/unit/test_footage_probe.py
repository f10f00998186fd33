"""Probing body-camera files with PyAV: real clips written by ``tests.support.videos``, then the same
clips cut short, empty, or not video at all. Bad files give ``ok=False`` (never an exception) and
posters and previews raise ``ProbeError``; the source file is never changed."""
from __future__ import annotations

import re

import hashlib
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image

from fieldapp.footage.probe import ProbeError, make_poster, make_preview, probe_video
from tests.support.videos import make_big_video, make_video, truncate

START = datetime(2026, 11, 3, 1, 15, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """A 2 s 320×240 clip with sound and a start time, shared read-only by the tests below."""
    return make_video(tmp_path_factory.mktemp("clip") / "clip.mp4", 2.0, start=START, size=(320, 240),
                      fps=10, audio=True)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("full_decode", [False, True])
def test_probe_of_a_good_clip(clip, full_decode):
    probe = probe_video(clip, full_decode=full_decode)
    assert probe.ok and not probe.truncated and probe.error is None
    assert probe.duration_s == pytest.approx(2.0, abs=0.5)
    assert probe.started_at == START
    assert (probe.width, probe.height) == (320, 240)
    assert (probe.video_codec, probe.audio_codec) == ("h264", "aac")


def test_probe_without_start_or_sound(tmp_path):
    probe = probe_video(make_video(tmp_path / "plain.mp4", 1.0))
    assert probe.ok and probe.started_at is None and probe.audio_codec is None


def test_mpeg4_clip(tmp_path):
    probe = probe_video(make_video(tmp_path / "old.mp4", 1.0, codec="mpeg4"), full_decode=True)
    assert probe.ok and probe.video_codec == "mpeg4" and not probe.truncated


def test_poster_is_a_small_jpeg(clip):
    before = digest(clip)
    poster = make_poster(clip, max_side=100)
    image = Image.open(io.BytesIO(poster))
    assert image.format == "JPEG"
    assert max(image.size) <= 100 and image.size == (100, 74)  # 320×240 scaled, even sides
    assert make_poster(clip) and max(Image.open(io.BytesIO(make_poster(clip))).size) == 320  # never enlarged
    assert digest(clip) == before


def test_preview_is_a_small_mp4_that_probes(clip, tmp_path):
    before = digest(clip)
    preview = tmp_path / "preview.mp4"
    preview.write_bytes(make_preview(clip, max_side=160))
    probe = probe_video(preview, full_decode=True)
    assert probe.ok and not probe.truncated
    assert probe.video_codec == "h264" and probe.audio_codec is None
    assert max(probe.width, probe.height) <= 160
    assert probe.duration_s == pytest.approx(2.0, abs=0.5)
    data = preview.read_bytes()
    assert data[4:8] == b"ftyp" and data.find(b"moov") < data.find(b"mdat")  # faststart
    assert digest(clip) == before


def test_preview_can_be_cut_short(clip, tmp_path):
    preview = tmp_path / "short.mp4"
    preview.write_bytes(make_preview(clip, max_seconds=0.5))
    assert probe_video(preview).duration_s == pytest.approx(0.5, abs=0.25)


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9])
def test_truncated_clip(clip, tmp_path, keep):
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(clip.read_bytes())
    truncate(cut, keep)
    probe = probe_video(cut)
    assert probe.truncated and not probe.ok
    assert probe.error.startswith("truncated: ")
    with pytest.raises(ProbeError):
        make_preview(cut)
    with pytest.raises(ProbeError):
        make_poster(cut)


def test_cut_with_the_index_first_is_ok_but_truncated(tmp_path):
    """The index survives, frames are lost: the first frames still play, the probe says it is cut,
    a full decode says where it stops, and the preview shows the part that decodes."""
    cut = truncate(make_video(tmp_path / "fast.mp4", 4.0, size=(160, 120), fps=10, faststart=True), 0.6)
    quick = probe_video(cut)
    assert quick.ok and quick.truncated and "'mdat' box" in quick.error
    assert quick.duration_s == pytest.approx(4.0, abs=0.5)  # what the index states
    full = probe_video(cut, full_decode=True)
    # Where it stops depends on where the cut fell: inside a frame the decoder reports an error,
    # on a packet boundary the frames simply end; either way the message says when, before 4.0 s.
    assert full.truncated and ("decoding stopped at" in full.error or "frames end at" in full.error)
    assert float(re.search(r"(?:stopped|end) at ([0-9.]+) s", full.error)[1]) < 3.5
    preview = tmp_path / "preview.mp4"
    preview.write_bytes(make_preview(cut))
    assert 0 < probe_video(preview).duration_s < 4.0


def test_no_frame_decodes(tmp_path):
    """A whole file whose media data is zeros: it opens, nothing decodes."""
    clip = make_video(tmp_path / "zeros.mp4", 1.0, faststart=True)
    data = bytearray(clip.read_bytes())
    mdat = data.find(b"mdat") + 4
    data[mdat:] = bytes(len(data) - mdat)
    clip.write_bytes(data)
    probe = probe_video(clip)
    assert not probe.ok and not probe.truncated and probe.width == 64
    for make in (make_poster, make_preview):
        with pytest.raises(ProbeError):
            make(clip)


def test_empty_file(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    probe = probe_video(empty)
    assert not probe.ok and "empty" in probe.error
    with pytest.raises(ProbeError):
        make_poster(empty)


def test_text_file_named_mp4(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("执法记录 — not a video\n" * 50, encoding="utf-8")
    probe = probe_video(text)
    assert not probe.ok and not probe.truncated and probe.error
    with pytest.raises(ProbeError):
        make_preview(text)


def test_missing_file_is_not_ok(tmp_path):
    assert not probe_video(tmp_path / "absent.mp4").ok


def test_big_video_with_free_box_probes(tmp_path):
    big = make_big_video(tmp_path / "big.mp4", 5 * 1024 * 1024)
    assert big.stat().st_size >= 5 * 1024 * 1024
    probe = probe_video(big, full_decode=True)
    assert probe.ok and not probe.truncated and probe.duration_s == pytest.approx(1.0, abs=0.5)
    truncate(big, 0.5)  # cut inside the padding: the 'free' box now runs past the end
    assert probe_video(big).truncated
