"""What a body-camera file holds, and the small pictures of it a reviewer looks at, with PyAV.

Footage is evidence: nothing here writes to the source file. Everything reads it through FFmpeg
(PyAV), which is the part exposed to hostile or broken input, so:

* :func:`probe_video` never raises for a bad file: whatever FFmpeg or the parsing around it throws
  becomes ``Probe(ok=False, error=...)``. ``ok`` means the container opened and at least one video
  or audio stream decoded its first frame — enough to say "this is playable footage" cheaply, for a
  file of any size.
* Truncation — a camera losing power, an export copied half-way — is detected two ways. Cheaply,
  for ISO BMFF files (MP4/MOV, what body cameras write): the top-level boxes are walked from their
  headers, and a box running past the end of the file or a missing ``moov`` (the index a recorder
  writes last) means the file was cut. Thoroughly, with ``full_decode=True``: every frame is
  decoded, and an error or frames ending well before the stated duration mean the same.
  A file that is not media at all (a text file named ``.mp4``) is ``ok=False`` but not truncated.
* Memory stays bounded: frames are streamed and dropped, never collected; streams larger than
  ``MAX_DECODE_PIXELS`` (a forged header claiming a gigapixel frame) are not decoded.
* :func:`make_poster` and :func:`make_preview` raise :class:`ProbeError` when there is nothing to
  show. A preview of a file that decodes part-way is made from the part that decodes (the probe
  reports the truncation); a file of which no frame decodes raises.
"""
from __future__ import annotations

import io
import struct
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from fractions import Fraction
from pathlib import Path

import av
from av.video.frame import PictureType

MAX_DECODE_PIXELS = 7680 * 4320  # 8K; body cameras record 1080p or 1440p
FIRST_FRAME_MAX_PACKETS = 600
"""Packets read looking for first frames before giving up: seconds of footage, not the whole file."""
END_TOLERANCE_S = 1.0
"""How far before the stated duration the last decoded frame may be without meaning "truncated"."""
POSTER_AT_S = 1.0
POSTER_MAX_FRAMES = 300
PREVIEW_FPS = 10
PREVIEW_ENCODERS = ("libx264", "h264", "mpeg4")
EARLIEST_CREATION = datetime(1971, 1, 1, tzinfo=UTC)
"""creation_time before this is an unset clock (the MP4 epoch 1904, or 1970), not a time."""

_BMFF_TOP_LEVEL = frozenset({
    b"ftyp", b"styp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid", b"moof", b"mfra",
    b"sidx", b"meta", b"pdin", b"udta", b"emsg", b"prft", b"ssix",
})
_MAX_BOXES = 100_000


class ProbeError(Exception):
    """The file cannot give what was asked (a poster, a preview): no decodable frame."""


@dataclass(frozen=True)
class Probe:
    ok: bool  # opened, and a video or audio stream decoded its first frame
    duration_s: float | None  # as the container states it
    started_at: datetime | None  # creation_time metadata, aware UTC
    width: int | None
    height: int | None
    video_codec: str | None
    audio_codec: str | None
    error: str | None  # why not ok, or what is wrong although ok ("truncated: ...")
    truncated: bool  # cut short: boxes past the end / no moov, or decoding stops early


@dataclass
class _Pass:
    """What one pass of demuxing and decoding found."""

    decoded: set[str]  # stream types ("video", "audio") that produced a frame
    last_time: float | None  # the latest frame time seen, seconds
    error: str | None


# --- probing ------------------------------------------------------------------------------------

def probe_video(path: Path, *, full_decode: bool = False) -> Probe:
    """Describe a footage file; never raises for bad content (see the module docstring)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        cut = _bmff_cut(path, size) if size else None
    except OSError as exc:
        return _failed(f"cannot read the file: {exc.strerror or exc}")
    if size == 0:
        return _failed("empty file (0 bytes)")
    try:
        with av.open(str(path), mode="r", metadata_errors="ignore") as container:
            return _probe_container(container, cut, full_decode)
    except Exception as exc:  # FFmpeg and PyAV raise many types for broken input; all mean "not ok"
        return _failed(_error(cut, f"cannot open as media: {_reason(exc)}"), truncated=cut is not None)


def _probe_container(container: av.container.InputContainer, cut: str | None, full_decode: bool) -> Probe:
    """Probe an opened container: metadata first, then first frames, then (optionally) all."""
    video = container.streams.video[0] if container.streams.video else None
    audio = container.streams.audio[0] if container.streams.audio else None
    duration = _duration(container)
    described = {
        "duration_s": duration,
        "started_at": _creation_time(container),
        "width": (video.codec_context.width or None) if video else None,
        "height": (video.codec_context.height or None) if video else None,
        "video_codec": video.codec_context.name if video else None,
        "audio_codec": audio.codec_context.name if audio else None,
    }
    if video is None and audio is None:
        return Probe(ok=False, error=_error(cut, "no video or audio stream"), truncated=cut is not None,
                     **described)
    streams = [s for s in (video, audio) if s is not None and _decodable(s)]
    found = _decode_pass(container, streams, to_end=full_decode)
    ok = bool(found.decoded)
    cuts = [cut] if cut else []
    if ok and full_decode and (late := _ends_early(found, duration)):
        cuts.append(late)
    failure = None if ok else f"no stream decodes: {found.error or 'no frame in the first packets'}"
    return Probe(ok=ok, error=_error("; ".join(cuts), failure), truncated=bool(cuts), **described)


def _decodable(stream: av.stream.Stream) -> bool:
    """False for a video stream whose stated frame size is beyond any camera (a forged header)."""
    if stream.type != "video":
        return True
    return (stream.codec_context.width or 0) * (stream.codec_context.height or 0) <= MAX_DECODE_PIXELS


def _decode_pass(container: av.container.InputContainer, streams: list[av.stream.Stream], *,
                 to_end: bool) -> _Pass:
    """Demux and decode ``streams``: until each gave a frame (or failed), or to the end of the file.

    To the end, the first error stops the pass: what follows an error is not trusted to be there.
    """
    found = _Pass(decoded=set(), last_time=None, error=None)
    if not streams:
        found.error = "the video frame size is too large to decode"
        return found
    for stream in streams:
        stream.thread_type = "AUTO"
    failed: set[int] = set()
    try:
        for count, packet in enumerate(container.demux(streams)):
            stream = packet.stream
            if stream.index in failed:
                continue
            try:
                for frame in packet.decode():
                    found.decoded.add(stream.type)
                    if frame.time is not None:
                        found.last_time = max(found.last_time or 0.0, frame.time + _frame_seconds(frame))
            except Exception as exc:  # a packet FFmpeg refuses: this stream is done
                found.error = f"{stream.type} decoding failed: {_reason(exc)}"
                failed.add(stream.index)
                if to_end:
                    break
            if not to_end and (_settled(streams, found, failed) or count >= FIRST_FRAME_MAX_PACKETS):
                break
    except Exception as exc:  # the demuxer itself gave up
        found.error = f"reading packets failed: {_reason(exc)}"
    return found


def _settled(streams: list[av.stream.Stream], found: _Pass, failed: set[int]) -> bool:
    return all(s.type in found.decoded or s.index in failed for s in streams)


def _frame_seconds(frame: av.frame.Frame) -> float:
    """How long a frame lasts, so a complete file's last frame reaches its stated duration."""
    if isinstance(frame, av.AudioFrame) and frame.sample_rate:
        return frame.samples / frame.sample_rate
    duration = getattr(frame, "duration", None)
    if duration and frame.time_base:
        return float(duration * frame.time_base)
    return 0.0


def _ends_early(found: _Pass, duration: float | None) -> str | None:
    """Why a full decode says the file is cut short, or None when it reached the end."""
    stated = f" of the stated {duration:.1f} s" if duration else ""
    reached = found.last_time or 0.0
    if found.error:
        return f"decoding stopped at {reached:.1f} s{stated}: {found.error}"
    if duration and reached + END_TOLERANCE_S < duration:
        return f"frames end at {reached:.1f} s{stated}"
    return None


def _duration(container: av.container.InputContainer) -> float | None:
    """The container's duration, else the longest stream's; None when nothing states one."""
    if container.duration and container.duration > 0:
        return container.duration / av.time_base
    durations = [float(s.duration * s.time_base) for s in container.streams
                 if s.duration and s.time_base and s.duration > 0]
    return max(durations) if durations else None


def _creation_time(container: av.container.InputContainer) -> datetime | None:
    """creation_time of the container (else of its first video stream), aware UTC.

    MP4 stores UTC; FFmpeg writes it as ISO 8601 with ``Z``. A value without a zone is read as
    UTC for that reason; an unset clock (1904/1970) or garbage gives None.
    """
    sources = [container.metadata, *(s.metadata for s in container.streams.video[:1])]
    for metadata in sources:
        text = (metadata or {}).get("creation_time")
        if not text:
            continue
        try:
            value = datetime.fromisoformat(text.strip().replace("z", "Z"))
        except ValueError:
            continue
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        if value >= EARLIEST_CREATION:
            return value
    return None


def _bmff_cut(path: Path, size: int) -> str | None:
    """Why an MP4/MOV file looks cut short, from its top-level box headers; None if whole or not BMFF.

    A recorder writes ``mdat`` as it goes and ``moov`` (the index) at the end, so a file cut while
    recording has a box that runs past the end of the file or no ``moov`` at all.
    """
    seen: set[bytes] = set()
    offset = 0
    overrun = None
    with path.open("rb") as fh:
        for _ in range(_MAX_BOXES):
            if offset >= size:
                break
            fh.seek(offset)
            header = fh.read(16)
            if len(header) < 8:
                overrun = f"the file ends inside a box header at byte {offset}"
                break
            box_size, box_type = struct.unpack(">I4s", header[:8])
            if not seen and box_type not in _BMFF_TOP_LEVEL:
                return None  # not ISO BMFF: FFmpeg alone judges it
            if box_size == 1:
                if len(header) < 16:
                    overrun = f"the file ends inside the {_box_name(box_type)} box header"
                    break
                box_size = struct.unpack(">Q", header[8:16])[0]
            elif box_size == 0:
                box_size = size - offset
            if box_size < 8:
                return None  # malformed rather than cut; the decoder will say so
            seen.add(box_type)
            if offset + box_size > size:
                overrun = (f"the {_box_name(box_type)} box declares {box_size} bytes but the file ends "
                           f"{size - offset} bytes into it")
                break
            offset += box_size
    if b"moov" not in seen and seen & {b"ftyp", b"mdat"}:
        return "moov atom not found" + (f" ({overrun})" if overrun else "")
    return overrun


def _box_name(box_type: bytes) -> str:
    return repr(box_type.decode("latin-1"))


# --- poster and preview -------------------------------------------------------------------------

def make_poster(path: Path, max_side: int = 480) -> bytes:
    """A JPEG of the frame about ``POSTER_AT_S`` in (the first frame of a shorter clip), its long
    side at most ``max_side``. Raises ProbeError when no frame decodes."""
    with _open_video(path) as (container, stream):
        frame = _poster_frame(container, stream)
        width, height = _fit(frame.width, frame.height, max_side)
        image = frame.reformat(width=width, height=height, format="rgb24").to_image()
    out = io.BytesIO()
    image.save(out, "JPEG", quality=82, optimize=True)
    return out.getvalue()


def _poster_frame(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> av.VideoFrame:
    """The first frame at or after POSTER_AT_S from the start — or, for a shorter clip or when
    decoding breaks, the latest frame decoded. Only one frame is held at a time."""
    held = None
    start = None
    try:
        for count, frame in enumerate(container.decode(stream)):
            held = frame
            if frame.time is None:
                break
            start = frame.time if start is None else start
            if frame.time - start >= POSTER_AT_S or count >= POSTER_MAX_FRAMES:
                break
    except Exception as exc:
        if held is None:
            raise ProbeError(f"no frame decodes: {_reason(exc)}") from exc
    if held is None:
        raise ProbeError("the video stream has no frame")
    return held


def make_preview(path: Path, max_side: int = 320, max_seconds: float | None = None) -> bytes:
    """A small MP4 to watch in a browser: H.264 (MPEG-4 Part 2 if no H.264 encoder), yuv420p,
    long side at most ``max_side``, about PREVIEW_FPS frames a second, no audio, ``+faststart``.

    ``max_seconds`` limits the length. Raises ProbeError when no frame of the source decodes.
    """
    with _open_video(path) as (container, stream), tempfile.TemporaryDirectory(prefix="fieldapp-preview-") as tmp:
        width, height = _fit(stream.codec_context.width, stream.codec_context.height, max_side)
        target = Path(tmp) / "preview.mp4"
        with av.open(str(target), mode="w", format="mp4", options={"movflags": "+faststart"}) as out:
            encoder = _add_encoder(out, width, height)
            written = _transcode(container, stream, out, encoder, max_seconds)
            if written == 0:
                raise ProbeError("no frame of the video decodes")
            for packet in encoder.encode(None):
                out.mux(packet)
        return target.read_bytes()


def _transcode(container: av.container.InputContainer, stream: av.video.stream.VideoStream,
               out: av.container.OutputContainer, encoder: av.video.stream.VideoStream,
               max_seconds: float | None) -> int:
    """Encode the source's frames at PREVIEW_FPS; the count written. Stops at the first decode
    error once something was written (the part before it is still worth seeing)."""
    written, last_pts = 0, -1
    for seconds, frame in _timed_frames(container, stream):
        if max_seconds is not None and seconds >= max_seconds:
            break
        pts = round(seconds * PREVIEW_FPS)
        if pts <= last_pts:
            continue  # more source frames than preview frames in this tenth of a second
        scaled = frame.reformat(width=encoder.codec_context.width, height=encoder.codec_context.height,
                                format="yuv420p")
        scaled.pts, scaled.time_base = pts, Fraction(1, PREVIEW_FPS)
        scaled.pict_type = PictureType.NONE  # the source's frame types must not force the encoder's
        for packet in encoder.encode(scaled):
            out.mux(packet)
        written, last_pts = written + 1, pts
    return written


def _timed_frames(container: av.container.InputContainer,
                  stream: av.video.stream.VideoStream) -> Iterator[tuple[float, av.VideoFrame]]:
    """(seconds from the first frame, frame); a decode error ends the frames once some came and
    raises ProbeError before."""
    start = None
    rate = float(stream.average_rate or PREVIEW_FPS)
    frames = container.decode(stream)
    index = 0
    while True:
        try:
            frame = next(frames)
        except StopIteration:
            return
        except Exception as exc:
            if index:
                return
            raise ProbeError(f"the video does not decode: {_reason(exc)}") from exc
        if frame.time is None:
            seconds = index / rate
        else:
            start = frame.time if start is None else start
            seconds = frame.time - start
        index += 1
        yield seconds, frame


def _add_encoder(out: av.container.OutputContainer, width: int, height: int) -> av.video.stream.VideoStream:
    """The preview's video stream with the first encoder of PREVIEW_ENCODERS that opens here."""
    name = _usable_encoder(width, height)
    stream = out.add_stream(name, rate=PREVIEW_FPS)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.codec_context.gop_size = 2 * PREVIEW_FPS  # a keyframe every 2 s: the preview seeks
    if name == "mpeg4":
        stream.bit_rate = 300_000
    else:
        stream.options = {"preset": "veryfast", "crf": "28"}
    return stream


@cache
def _usable_encoder(width: int, height: int) -> str:
    """An encoder can be listed and still fail to open (a build without it, a size it refuses)."""
    for name in PREVIEW_ENCODERS:
        try:
            context = av.CodecContext.create(name, "w")
            context.width, context.height, context.pix_fmt = width, height, "yuv420p"
            context.time_base = Fraction(1, PREVIEW_FPS)
            context.open()
        except Exception:
            continue
        return name
    raise ProbeError(f"no video encoder among {', '.join(PREVIEW_ENCODERS)} opens")


@contextmanager
def _open_video(path: Path) -> Iterator[tuple[av.container.InputContainer, av.video.stream.VideoStream]]:
    """The opened container and its first video stream; ProbeError when there is none to decode."""
    try:
        container = av.open(str(path), mode="r", metadata_errors="ignore")
    except Exception as exc:
        raise ProbeError(f"cannot open as media: {_reason(exc)}") from exc
    with container:
        if not container.streams.video:
            raise ProbeError("no video stream")
        stream = container.streams.video[0]
        if not _decodable(stream) or not stream.codec_context.width:
            raise ProbeError("the video frame size is missing or too large to decode")
        stream.thread_type = "AUTO"
        yield container, stream


def _fit(width: int, height: int, max_side: int) -> tuple[int, int]:
    """Even dimensions (yuv420p needs them) with the long side at most ``max_side``, never enlarged."""
    scale = min(1.0, max_side / max(width, height))
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


# --- small helpers ------------------------------------------------------------------------------

def _failed(error: str | None, *, truncated: bool = False) -> Probe:
    return Probe(ok=False, duration_s=None, started_at=None, width=None, height=None, video_codec=None,
                 audio_codec=None, error=error, truncated=truncated)


def _error(cut: str | None, failure: str | None = None) -> str | None:
    """One message: "truncated: <why>" first when cut, then why the file is not ok."""
    parts = ([f"truncated: {cut}"] if cut else []) + ([failure] if failure else [])
    return "; ".join(parts) or None


def _reason(exc: BaseException) -> str:
    """FFmpeg's words without the errno and the file path PyAV adds ("[Errno 1094995529] ...: 'x'")."""
    if isinstance(exc, av.FFmpegError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
