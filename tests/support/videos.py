"""Real video files for tests and benchmarks, written with PyAV and no numpy.

Frames are built as ``yuv420p`` planes filled from bytes, each frame with its own luma ramp so the
encoder has real motion to code and frames differ. Files are written the way body cameras write
them: the ``moov`` index last (no faststart), so cutting one short loses the index, as a camera
losing power does.
"""
from __future__ import annotations

import math
import struct
from datetime import UTC, datetime
from pathlib import Path

import av

AUDIO_RATE = 16_000
AUDIO_FRAME_SAMPLES = 1024
FREE_BOX_HEADER = 16  # 32-bit size 1, b"free", 64-bit size
PADDING_CHUNK = 4 * 1024 * 1024


def make_video(path: Path, seconds: float = 2.0, *, start: datetime | None = None, size: tuple[int, int] = (64, 48),
               fps: int = 5, audio: bool = False, codec: str = "libx264", faststart: bool = False) -> Path:
    """Write a real MP4 of ``seconds`` at ``fps`` (with a 440 Hz mono AAC track if ``audio``).

    ``start`` becomes the container's ``creation_time`` (ISO 8601, UTC, ``Z``), where cameras put
    the recording's start. ``faststart`` moves the index before the media data, as an export
    prepared for streaming has it; a cut then leaves the index whole and loses frames instead.
    """
    path = Path(path)
    width, height = size
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), mode="w", format="mp4", options=options) as container:
        if start is not None:
            container.metadata["creation_time"] = _iso_utc(start)
        video = container.add_stream(codec, rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        sound = container.add_stream("aac", rate=AUDIO_RATE, layout="mono") if audio else None
        for index in range(max(1, round(seconds * fps))):
            for packet in video.encode(_frame(width, height, index)):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        if sound is not None:
            _write_tone(container, sound, seconds)
    return path


def _frame(width: int, height: int, index: int) -> av.VideoFrame:
    """A frame whose luma is a diagonal ramp shifted by ``index``: every frame differs."""
    frame = av.VideoFrame(width, height, "yuv420p")
    for number, plane in enumerate(frame.planes):
        if number == 0:
            rows = (bytes((x + y + index * 9) % 220 + 16 for x in range(plane.line_size)) for y in range(plane.height))
            plane.update(b"".join(rows))
        else:
            plane.update(bytes([128 + (index * 5) % 40]) * plane.buffer_size)
    frame.pts = index
    return frame


def _write_tone(container: av.container.OutputContainer, stream: av.audio.stream.AudioStream, seconds: float) -> None:
    """A mono 440 Hz tone of ``seconds`` as float planar samples packed by hand."""
    total = round(seconds * AUDIO_RATE)
    for first in range(0, total, AUDIO_FRAME_SAMPLES):
        count = min(AUDIO_FRAME_SAMPLES, total - first)
        frame = av.AudioFrame(format="fltp", layout="mono", samples=count)
        frame.sample_rate, frame.pts = AUDIO_RATE, first
        samples = (0.2 * math.sin(2 * math.pi * 440 * (first + i) / AUDIO_RATE) for i in range(count))
        data = struct.pack(f"<{count}f", *samples)
        frame.planes[0].update(data + b"\x00" * (frame.planes[0].buffer_size - len(data)))
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)


def _iso_utc(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("start must be an aware datetime")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def truncate(path: Path, keep_fraction: float = 0.5) -> Path:
    """Cut the file in place to ``keep_fraction`` of its bytes, as an interrupted copy leaves it."""
    path = Path(path)
    with path.open("r+b") as fh:
        fh.truncate(int(path.stat().st_size * keep_fraction))
    return path


def make_big_video(path: Path, size_bytes: int) -> Path:
    """A valid MP4 of at least ``size_bytes``, quickly: a short real clip followed by one ISO BMFF
    ``free`` box (64-bit size) filling the rest. Players and FFmpeg skip ``free`` boxes, so the
    file probes and plays as the clip; its bytes are really written (not a sparse hole) so that
    hashing and copying it costs what a real file of that size costs.
    """
    path = Path(path)
    make_video(path, seconds=1.0)
    padding = size_bytes - path.stat().st_size - FREE_BOX_HEADER
    if padding <= 0:
        return path
    chunk = bytes(range(256)) * (PADDING_CHUNK // 256)
    with path.open("ab") as fh:
        fh.write(struct.pack(">I4sQ", 1, b"free", FREE_BOX_HEADER + padding))
        remaining = padding
        while remaining:
            step = min(remaining, len(chunk))
            fh.write(chunk[:step])
            remaining -= step
    return path
