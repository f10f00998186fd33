"""What the server derives from a completed original: type, size, EXIF and previews.

``process(path)`` runs once an original has been received in full and its hash verified. It reads
the file and never writes to it: the original is evidence and stays byte for byte what the officer
captured, whatever its size or state. It never raises for a bad image — a decompression bomb, a
truncated or corrupt file gets flags and, where one is safe to make, a preview; only bytes of no
supported media type raise :class:`~fieldapp.media.sniff.UnsupportedMedia` (the upload refuses them
before that, from the same ``sniff``), and programming errors propagate.

Decoding policy (what is safe to decode, fast enough to run inline):

* Only JPEG, PNG, WebP and GIF are decoded, each with Pillow restricted to that one format (the
  type comes from the bytes, never from the name or the declared type).
* JPEGs go through draft mode: ``draft("RGB", (1280, 1280))`` before anything loads the pixels, so
  libjpeg decodes at 1/2, 1/4 or 1/8 scale; the thumbnail is made from the preview, never by a
  second decode. A 200-MP phone JPEG is decoded as 2040×1530.
* ``MAX_IMAGE_PIXELS`` is 250 MP (Pillow's default, 89.5 MP, would flag every 108- and 200-MP phone
  photo). Pillow *warns* between that limit and twice it and raises above; both count here: the
  warning is turned into an error around ``Image.open`` and the file is flagged
  ``decompression_bomb``. A bomb-flagged *baseline* JPEG still gets a preview when its draft-scaled
  decode is at most ``DRAFT_DECODE_MAX_PIXELS`` (16 MP, 48 MB of RGB): at 1/8 scale the decoder
  never allocates the full-size image, so what is decoded is bounded. A progressive JPEG is not
  decoded above ``FULL_DECODE_MAX_PIXELS``: libjpeg keeps the coefficients of the whole image at
  full size for multi-scan files, whatever the output scale. PNG, WebP and GIF have no
  reduced-scale decode and are decoded only up to ``FULL_DECODE_MAX_PIXELS``.
* A truncated JPEG (``image file is truncated``) is flagged ``truncated``; a preview is still made
  from an in-memory copy with an end-of-image marker appended (libjpeg fills the missing rows), so
  ``ImageFile.LOAD_TRUNCATED_IMAGES`` — process-wide state — is never set.
* A JPEG whose header claims more rows than its data holds *before* its end-of-image marker (an
  edited header: 20000×10000 claimed, 640×480 of data) decodes without an error — libjpeg fills the
  rest with flat grey and only warns — so a baseline JPEG whose decoded last row is flat is decoded
  once more without that marker, and rows the data cannot supply are counted. Beyond what a whole
  file lacks there (the last two rows of MCUs, which libjpeg holds back waiting for the marker) it
  is flagged ``dimensions_mismatch`` and gets no preview: a picture mostly made of the decoder's
  fill would be shown as if it were the photo. Width and height stay what the header claims.
* Animations (GIF, animated PNG and WebP — phones' screen recordings and animated captures) are
  previewed by their first frame and flagged ``animated`` so a reader knows; ``frames`` counts their
  frames. Pillow counts a GIF's frames by walking the whole file (each frame's size is known only
  from the frame before), so GIFs above ``GIF_FRAME_COUNT_MAX_BYTES`` are not counted. Their total
  duration is not recorded: Pillow reads a frame's delay only when it decodes that frame.
* HEIC/HEIF (iPhone photos) are stored as received and not decoded here (flag
  ``heic_not_decoded``): the phone, whose browser decodes HEIC, already makes the preview and reads
  the EXIF; decoding HEVC on the server would need a native decoder (libheif/libde265 through
  pillow-heif) run on untrusted input, with no reduced-scale decode to keep it cheap.
* Video and audio are not decoded: type and size only.

EXIF date-times carry no zone. When ``OffsetTimeOriginal`` is present it gives the offset; otherwise
the time is read as Asia/Shanghai and ``taken_at_zone_assumed`` says so.
"""
from __future__ import annotations

import io
import math
import mmap
import os
import re
import struct
import threading
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any

from PIL import Image, ImageChops, JpegImagePlugin

from .sniff import SNIFF_BYTES, UnsupportedMedia, sniff

try:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ASSUMED_ZONE: Any = ZoneInfo("Asia/Shanghai")
    except ZoneInfoNotFoundError:  # no tz database: China has kept +08:00 without DST since 1991
        ASSUMED_ZONE = timezone(timedelta(hours=8), "Asia/Shanghai")
except ImportError:  # pragma: no cover
    ASSUMED_ZONE = timezone(timedelta(hours=8), "Asia/Shanghai")

MAX_IMAGE_PIXELS = 250_000_000
"""Pillow's decompression-bomb limit, set process-wide when this module is imported: above it Pillow
warns (treated as an error here), above twice it Pillow raises. 250 MP lets the 200-MP JPEGs of
current phones (16320×12240) through with room to spare."""
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS

DRAFT_DECODE_MAX_PIXELS = 16_000_000
"""Largest image a JPEG is decoded to after draft scaling (bomb-flagged ones included)."""
FULL_DECODE_MAX_PIXELS = 50_000_000
"""Largest PNG/WebP, or progressive JPEG, decoded at all (these cannot be decoded at reduced scale)."""
TRUNCATED_RETRY_MAX_BYTES = 256 * 1024 * 1024
"""A truncated JPEG larger than this is not copied into memory for a partial preview."""
GIF_FRAME_COUNT_MAX_BYTES = 32 * 1024 * 1024
"""Largest GIF whose frames are counted: the walk costs about 1.5 µs a frame, and a hostile GIF of
17-byte frames this size holds two million of them (about 3 s)."""

PREVIEW_SIZES: dict[str, int] = {"preview": 1280, "thumb": 320}
"""Preview name -> longest side in pixels, largest first (each is made from the one before)."""
PREVIEW_QUALITY = {"preview": 82, "thumb": 75}
RESAMPLE = Image.Resampling.BICUBIC
REDUCING_GAP = 2.0

FLAG_MESSAGES: dict[str, tuple[str, str]] = {
    "decompression_bomb": (
        f"图像像素数超过 {MAX_IMAGE_PIXELS // 1_000_000} 百万的安全上限（可能是解压缩炸弹）；原件已按原样保存，"
        "仅在可安全缩小解码时生成预览。",
        f"The image has more than {MAX_IMAGE_PIXELS // 1_000_000} million pixels (a possible "
        "decompression bomb); the original is stored as received and a preview is made only when "
        "it can be decoded safely at reduced scale."),
    "truncated": ("图像文件不完整（被截断）；原件已按原样保存，预览中缺失部分显示为灰色。",
                  "The image file is truncated; the original is stored as received and the missing "
                  "part shows grey in the preview."),
    "corrupt": ("图像数据已损坏；原件已按原样保存，预览（如能生成）可能不完整。",
                "The image data is corrupt; the original is stored as received and the preview, "
                "if one could be made, may be incomplete."),
    "too_large_to_preview": ("图像过大，服务器不解码，没有预览；原件已按原样保存。",
                             "The image is too large to decode on the server, so it has no "
                             "preview; the original is stored as received."),
    "heic_not_decoded": ("HEIC/HEIF 照片已按原样保存为原件；服务器不解码 HEIC，预览和拍摄信息以手机生成的为准。",
                         "HEIC/HEIF photo stored as received; the server does not decode HEIC, so "
                         "the preview and capture details are the ones the phone made."),
    "preview_failed": ("无法为该图像生成预览；原件已按原样保存。",
                       "No preview could be made for this image; the original is stored as "
                       "received."),
    "exif_unreadable": ("EXIF 信息无法读取；原件已按原样保存。",
                        "The EXIF data cannot be read; the original is stored as received."),
    "dimensions_mismatch": ("图像文件头声明的尺寸大于图像数据实际能解码出的画面（文件可能被改动或损坏）；"
                            "原件已按原样保存，未生成预览，以免把解码器填充的灰色当作照片内容。",
                            "The image header claims larger dimensions than its picture data decodes to "
                            "(the file may have been edited or damaged); the original is stored as "
                            "received and no preview is made, so that the decoder's grey fill is not "
                            "shown as if it were the photo."),
    "animated": ("动图（如手机录屏或动态照片）；原件已按原样保存，预览仅显示第一帧。",
                 "Animated image (such as a phone screen recording); the original is stored as "
                 "received and the preview shows its first frame only."),
    "declared_type_mismatch": ("手机声明的文件类型与文件内容不符；已按内容识别的类型保存。",
                               "The type the phone declared does not match the content; the file is "
                               "stored as the type its bytes show."),
}

_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP", "image/gif": "GIF"}
# Formats that can hold an animation. Not JPEG: Pillow opens a JPEG carrying a second picture (MPO,
# the gain map of an Ultra HDR photo) as several frames, and those are not an animation.
_ANIMATION_FORMATS = frozenset({"PNG", "WEBP", "GIF"})

# Everything Pillow raises for a file it cannot identify or decode.
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, IndexError, MemoryError,
                  Image.DecompressionBombError, Image.DecompressionBombWarning)
# Walking the frames of a cut GIF, Pillow also unpacks a frame header too short to unpack.
_FRAME_WALK_ERRORS = (*_DECODE_ERRORS, struct.error)

_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
              4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
              6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}

# warnings.catch_warnings() swaps process-wide state: pipeline threads take turns around open().
_WARNINGS_LOCK = threading.Lock()


@dataclass
class ExifData:
    taken_at: datetime | None = None        # aware: DateTimeOriginal (else DateTimeDigitized)
    taken_at_zone_assumed: bool = False     # True: no OffsetTime*, read as Asia/Shanghai
    lat_e6: int | None = None               # WGS-84 micro-degrees, exact from the rationals
    lon_e6: int | None = None
    gps_accuracy_m: int | None = None       # GPSHPositioningError, rounded up to whole metres
    make: str | None = None
    model: str | None = None
    orientation: int | None = None


@dataclass
class Result:
    mime: str
    kind: str
    size_bytes: int
    width: int | None = None    # as stored in the file (before EXIF orientation)
    height: int | None = None
    frames: int | None = None   # of a PNG, WebP or GIF (1: a still); None for others, or uncounted
    exif: ExifData = field(default_factory=ExifData)
    flags: list[str] = field(default_factory=list)
    previews: dict[str, bytes] = field(default_factory=dict)  # name -> JPEG, orientation applied
    declared_mime: str | None = None

    def flag(self, code: str) -> None:
        if code not in self.flags:
            self.flags.append(code)

    @property
    def messages(self) -> list[dict[str, str]]:
        return [{"code": c, "zh": FLAG_MESSAGES[c][0], "en": FLAG_MESSAGES[c][1]}
                for c in self.flags if c in FLAG_MESSAGES]


def process(path: Path, *, declared_mime: str | None = None) -> Result:
    """Type, size, EXIF, flags and previews of the completed original at ``path`` (read only)."""
    path = Path(path)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        sniffed = sniff(f.read(SNIFF_BYTES))
        result = Result(mime=sniffed.mime, kind=sniffed.kind, size_bytes=size,
                        declared_mime=declared_mime)
        if declared_mime and _family(declared_mime) not in ("", _family(sniffed.mime)):
            result.flag("declared_type_mismatch")
        if sniffed.mime in ("image/heic", "image/heif"):
            result.flag("heic_not_decoded")
        elif sniffed.mime in _FORMATS:
            f.seek(0)
            _process_image(f, _FORMATS[sniffed.mime], size, result)
    return result


# --- images -------------------------------------------------------------------------------------

def _open(f, fmt: str, result: Result) -> Image.Image | None:
    try:
        with _WARNINGS_LOCK, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(f, formats=[fmt])
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        result.flag("decompression_bomb")
    except _DECODE_ERRORS:
        result.flag("corrupt")
        return None
    if fmt != "JPEG":
        return None
    # A JPEG keeps its chance of a reduced-scale preview: reopen it without Pillow's size check,
    # which is done below against the draft-scaled size instead.
    try:
        f.seek(0)
        return JpegImagePlugin.JpegImageFile(f)
    except _DECODE_ERRORS:
        result.flag("corrupt")
        return None


def _process_image(f, fmt: str, size_bytes: int, result: Result) -> None:
    im = _open(f, fmt, result)
    if im is None:
        return
    with im:
        result.width, result.height = im.size
        pixels = im.size[0] * im.size[1]
        if pixels > MAX_IMAGE_PIXELS:  # also when Image.MAX_IMAGE_PIXELS was changed elsewhere
            result.flag("decompression_bomb")
        _read_exif(im, result)
        if fmt in _ANIMATION_FORMATS:
            _count_frames(im, fmt, size_bytes, result)
        longest = max(PREVIEW_SIZES.values())
        progressive = False
        decoding = None
        if fmt == "JPEG":
            progressive = bool(im.info.get("progressive") or im.info.get("progression"))
            if progressive and pixels > FULL_DECODE_MAX_PIXELS:
                result.flag("too_large_to_preview")
                return
            im.draft("RGB", (longest, longest))  # before anything loads the pixels
            if im.size[0] * im.size[1] > DRAFT_DECODE_MAX_PIXELS:
                result.flag("too_large_to_preview")
                return
            if not progressive:  # _check_scan reads the one scan of a baseline JPEG
                # What libjpeg is asked to decode, draft scale included (load() clears the tile).
                decoding = im.tile[0]._replace(args=(*im.tile[0].args, *im.decoderconfig))
        elif pixels > FULL_DECODE_MAX_PIXELS or "decompression_bomb" in result.flags:
            result.flag("too_large_to_preview")
            return
        try:
            im.load()
            decoded = im
        except _DECODE_ERRORS as exc:
            truncated = "truncated" in str(exc)
            result.flag("truncated" if truncated else "corrupt")
            if not (truncated and fmt == "JPEG" and size_bytes <= TRUNCATED_RETRY_MAX_BYTES):
                return
            decoded = _load_truncated_jpeg(f, longest)
            if decoded is None:
                return
        else:
            if decoding is not None:
                _check_scan(f, im, decoding, result)
        if "dimensions_mismatch" in result.flags:
            return  # mostly the decoder's fill: no preview to pass for the photo
        _make_previews(decoded, result)


def _count_frames(im: Image.Image, fmt: str, size_bytes: int, result: Result) -> None:
    """Frames of a picture that can animate. Counted before any decoding: the walk leaves the
    first frame ready to load, and a damaged later frame does not cost the preview."""
    try:
        if not im.is_animated:
            result.frames = 1
            return
        result.flag("animated")
        if fmt == "GIF" and size_bytes > GIF_FRAME_COUNT_MAX_BYTES:
            return
        result.frames = im.n_frames
    except _FRAME_WALK_ERRORS:
        result.flag("corrupt")
        _back_to_first_frame(im)


def _back_to_first_frame(im: Image.Image) -> None:
    try:
        im.seek(0)
    except _FRAME_WALK_ERRORS:
        pass  # loading the first frame then fails and says so


# In the entropy-coded data of a single-scan JPEG, 0xFF is followed by 0x00 (stuffing), a restart
# marker (D0–D7) or fill bytes; the first other marker must be EOI. libjpeg only *warns* about any
# other (and makes up the rest of the image), and Pillow drops the warning.
_IN_SCAN = frozenset([0x00, 0xFF, *range(0xD0, 0xD8)])
_EOI = 0xD9


def _check_scan(f, im: Image.Image, decoding, result: Result) -> None:
    """Flags what libjpeg decoded without complaint: a bad marker inside the scan (``corrupt``),
    or a scan ending, at its end-of-image marker, before the rows the header claims
    (``dimensions_mismatch``)."""
    with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        end = _scan_end(data)
        if end is None:
            return
        if data[end + 1] != _EOI:
            result.flag("corrupt")
        elif _data_ends_before_the_claimed_rows(im, data, decoding, end):
            result.flag("dimensions_mismatch")


def _scan_end(data) -> int | None:
    """Offset of the first marker after the entropy-coded data of the first scan."""
    i = _scan_start(data)
    if i is None:
        return None
    end = len(data) - 1
    find, in_scan = data.find, _IN_SCAN
    while True:  # find() runs at memchr speed; 0xFF is ~1/256 of the data
        i = find(b"\xff", i, end)
        if i < 0:
            return None
        if data[i + 1] not in in_scan:
            return i
        i += 1


def _data_ends_before_the_claimed_rows(im: Image.Image, data, decoding, end: int) -> bool:
    """Whether the scan, up to its end-of-image marker, holds fewer rows than the header claims.

    Reaching the marker early, libjpeg leaves every missing block at zero (flat grey) and only warns,
    which Pillow drops. So a picture whose last row is not flat was decoded from data to its end.
    Otherwise the same bytes are decoded again *without* the marker, onto a canvas of a colour other
    than that last row's: libjpeg then stops where the data stops, and every row it could not write
    still differs from the first decode."""
    last_row = _flat_colour(im.crop((0, im.height - 1, im.width, im.height)))
    if last_row is None:
        return False
    canvas = Image.new(im.mode, im.size, _other_colour(last_row))
    with memoryview(data) as whole, whole[decoding.offset:end] as without_eoi:
        try:
            canvas.frombytes(without_eoi, decoding.codec_name, *decoding.args)
        except _DECODE_ERRORS:
            pass  # "not enough image data": the marker was held back on purpose
    differing = ImageChops.difference(im, canvas).getbbox()
    rows_from_data = differing[1] if differing else im.height
    return im.height - rows_from_data > 2 * _mcu_row_height(im, decoding.args)


def _flat_colour(strip: Image.Image) -> tuple[int, ...] | None:
    """The one colour of a strip of pixels, or None when it has more than one."""
    extrema = strip.getextrema()
    if len(strip.getbands()) == 1:
        extrema = (extrema,)
    if any(low != high for low, high in extrema):
        return None
    return tuple(low for low, _ in extrema)


def _other_colour(colour: tuple[int, ...]) -> int | tuple[int, ...]:
    """A colour differing from ``colour`` in every band, in the form Image.new takes."""
    other = tuple(255 - band for band in colour)
    return other[0] if len(other) == 1 else other


def _mcu_row_height(im: Image.Image, decoder_args: tuple) -> int:
    """Rows of output per row of MCUs, at the scale the JPEG is decoded."""
    scale = decoder_args[2] if len(decoder_args) > 2 else 1
    vertical_sampling = max(v for _, _, v, _ in im.layer)
    return max(1, 8 * vertical_sampling // scale)


def _scan_start(data) -> int | None:
    """Offset of the entropy-coded data of the first scan (segments walked, not searched: the
    EXIF thumbnail inside APP1 is a JPEG of its own)."""
    i, end = 2, len(data)
    while i + 4 <= end:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:
            i += 2
            continue
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if marker == 0xDA:
            return i + 2 + length
        i += 2 + length
    return None


def _load_truncated_jpeg(f, longest: int) -> Image.Image | None:
    """Decode what a truncated JPEG holds from a copy ending in an EOI marker (no global state)."""
    f.seek(0)
    data = f.read() + b"\xff\xd9"
    try:
        im = JpegImagePlugin.JpegImageFile(io.BytesIO(data))
        im.draft("RGB", (longest, longest))
        if im.size[0] * im.size[1] > DRAFT_DECODE_MAX_PIXELS:
            return None
        im.load()
        return im
    except _DECODE_ERRORS:
        return None


def _make_previews(im: Image.Image, result: Result) -> None:
    """Each size from the one before (largest first), orientation applied once, to the largest."""
    try:
        im = _displayable(im)
        for index, (name, side) in enumerate(sorted(PREVIEW_SIZES.items(), key=lambda kv: -kv[1])):
            if index:
                im = im.copy()
            im.thumbnail((side, side), RESAMPLE, reducing_gap=REDUCING_GAP)
            if index == 0 and result.exif.orientation in _TRANSPOSE:
                im = im.transpose(_TRANSPOSE[result.exif.orientation])
            out = io.BytesIO()
            im.save(out, "JPEG", quality=PREVIEW_QUALITY.get(name, 80))
            result.previews[name] = out.getvalue()
    except _DECODE_ERRORS:
        result.previews.clear()
        result.flag("preview_failed")


def _displayable(im: Image.Image) -> Image.Image:
    """An RGB or L image: transparency over white, other modes converted."""
    if im.mode in ("RGB", "L"):
        return im
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if im.mode.startswith("I;16") or im.mode in ("I", "F"):
        return im.convert("I").point(lambda v: v / 256).convert("L")
    return im.convert("RGB")


# --- EXIF ---------------------------------------------------------------------------------------

_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
_MAKE, _MODEL, _ORIENTATION = 0x010F, 0x0110, 0x0112
_DATETIME_ORIGINAL, _DATETIME_DIGITIZED = 0x9003, 0x9004
_OFFSET_ORIGINAL, _OFFSET_DIGITIZED = 0x9011, 0x9012
_SUBSEC_ORIGINAL, _SUBSEC_DIGITIZED = 0x9291, 0x9292
_DATETIME_RE = re.compile(r"^(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_OFFSET_RE = re.compile(r"^([+-])(\d{2}):(\d{2})$")


def _read_exif(im: Image.Image, result: Result) -> None:
    try:
        exif = im.getexif()
        ifd0 = dict(exif)
        sub = dict(exif.get_ifd(_EXIF_IFD)) if _EXIF_IFD in ifd0 else {}
        gps = dict(exif.get_ifd(_GPS_IFD)) if _GPS_IFD in ifd0 else {}
    except Exception:  # noqa: BLE001 - Pillow's TIFF-tag parser raises many types on bad EXIF
        result.flag("exif_unreadable")
        return
    data = result.exif
    data.make = _text(ifd0.get(_MAKE))
    data.model = _text(ifd0.get(_MODEL))
    orientation = ifd0.get(_ORIENTATION)
    data.orientation = orientation if isinstance(orientation, int) and 1 <= orientation <= 8 \
        else None
    tags = {**ifd0, **sub}
    for when, offset, subsec in ((_DATETIME_ORIGINAL, _OFFSET_ORIGINAL, _SUBSEC_ORIGINAL),
                                 (_DATETIME_DIGITIZED, _OFFSET_DIGITIZED, _SUBSEC_DIGITIZED)):
        taken = _taken_at(tags.get(when), tags.get(offset), tags.get(subsec))
        if taken is not None:
            data.taken_at, data.taken_at_zone_assumed = taken
            break
    lat = _degrees_e6(gps.get(2), gps.get(1), b"S", 90)
    lon = _degrees_e6(gps.get(4), gps.get(3), b"W", 180)
    if lat is not None and lon is not None:
        data.lat_e6, data.lon_e6 = lat, lon
        accuracy = _fraction(gps.get(31))
        if accuracy is not None and 0 <= accuracy < 10_000_000:
            data.gps_accuracy_m = math.ceil(accuracy)


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    value = "".join(ch for ch in value if ch.isprintable()).strip()
    return value[:64] or None


def _taken_at(value: Any, offset: Any, subsec: Any) -> tuple[datetime, bool] | None:
    value = _text(value)
    match = _DATETIME_RE.match(value or "")
    if not match:
        return None
    try:
        naive = datetime(*(int(g) for g in match.groups()))
    except ValueError:  # "0000:00:00 00:00:00" and other impossible dates
        return None
    digits = "".join(ch for ch in (_text(subsec) or "") if ch.isdigit())[:6]
    if digits:
        naive = naive.replace(microsecond=int(digits.ljust(6, "0")))
    off = _OFFSET_RE.match(_text(offset) or "")
    if off:
        sign = -1 if off.group(1) == "-" else 1
        delta = timedelta(hours=int(off.group(2)), minutes=int(off.group(3)))
        if delta <= timedelta(hours=14) and int(off.group(3)) < 60:
            return naive.replace(tzinfo=timezone(sign * delta)), False
    return naive.replace(tzinfo=ASSUMED_ZONE), True


def _fraction(value: Any) -> Fraction | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Fraction(value)
    numerator = getattr(value, "numerator", None)
    denominator = getattr(value, "denominator", None)
    if isinstance(numerator, int) and isinstance(denominator, int):
        return Fraction(numerator, denominator) if denominator else None
    if isinstance(value, float) and math.isfinite(value):
        return Fraction(value)
    return None


def _degrees_e6(value: Any, ref: Any, negative: bytes, limit: int) -> int | None:
    if not isinstance(value, tuple) or len(value) != 3:
        return None
    parts = [_fraction(v) for v in value]
    if any(p is None or p < 0 for p in parts):
        return None
    degrees = parts[0] + parts[1] / 60 + parts[2] / 3600
    if degrees > limit:
        return None
    if isinstance(ref, str):
        ref = ref.encode("ascii", "ignore")
    sign = -1 if isinstance(ref, bytes) and ref.strip(b"\x00 ").upper() == negative else 1
    return sign * round(degrees * 1_000_000)


# --- declared types -----------------------------------------------------------------------------

_FAMILIES = {
    "image/jpeg": "jpeg", "image/jpg": "jpeg", "image/pjpeg": "jpeg",
    "image/png": "png", "image/x-png": "png", "image/webp": "webp",
    "image/heic": "heif", "image/heif": "heif", "image/heic-sequence": "heif",
    "image/heif-sequence": "heif",
    "video/mp4": "mp4", "audio/mp4": "mp4", "audio/m4a": "mp4", "audio/x-m4a": "mp4",
    "video/x-m4v": "mp4", "video/quicktime": "mov",
    "video/3gpp": "3gp", "audio/3gpp": "3gp", "video/3gpp2": "3gp", "audio/3gpp2": "3gp",
    "audio/aac": "aac", "audio/x-aac": "aac", "audio/aacp": "aac",
    "audio/mpeg": "mp3", "audio/mp3": "mp3", "audio/x-mp3": "mp3", "audio/mpeg3": "mp3",
    "audio/amr": "amr", "audio/amr-wb": "amr", "audio/3gpp-amr": "amr",
    "audio/wav": "wav", "audio/x-wav": "wav", "audio/wave": "wav", "audio/vnd.wave": "wav",
    "audio/ogg": "ogg", "video/ogg": "ogg", "application/ogg": "ogg", "audio/opus": "ogg",
    "video/webm": "webm", "audio/webm": "webm",
}


def _family(mime: str) -> str:
    """The container a MIME type names ("" when it says nothing, e.g. application/octet-stream)."""
    base = mime.split(";", 1)[0].strip().lower()
    if not base or base == "application/octet-stream":
        return ""
    return _FAMILIES.get(base, base)


__all__ = ["ASSUMED_ZONE", "DRAFT_DECODE_MAX_PIXELS", "ExifData", "FLAG_MESSAGES",
           "FULL_DECODE_MAX_PIXELS", "MAX_IMAGE_PIXELS", "PREVIEW_SIZES", "Result",
           "UnsupportedMedia", "process"]
