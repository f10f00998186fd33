"""Marked copies of photos and videos handed out under an access grant (调阅).

Why copies are marked (art. 29): a copy that leaves the bureau must be traceable to the person who
received it and the grant it was handed out under. Every copy therefore carries, drawn across the
whole picture, the grant number, the viewer and the time the copy was made; a crop of any sizeable
part still shows them. The marks are semi-transparent: the copy must still show what the original
shows. For a machine (and for the access register), a photo copy also carries the same lines in its
JPEG comment and EXIF ImageDescription, and a video copy in its MP4 comment.

Why redaction happens only on copies (art. 30): the original is evidence and never changes. Faces of
bystanders, plates and documents a viewer has no right to see are made unreadable in the copy each
time one is made — by averaging the rectangle into a few large cells and blurring those, which
throws the detail away rather than hiding it behind a filter that could be undone. Rectangles are
given in fractions of the picture so one drawn on a preview lands on the same place of the
full-size copy and of every video frame.

Nothing here touches a database or the storage: bytes and paths in, bytes and files out.
"""
from __future__ import annotations

import io
import logging
import math
import numbers
import os
import subprocess
import tempfile
import threading
import unicodedata
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import av
from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps

from fieldapp.footage.probe import MAX_DECODE_PIXELS, PREVIEW_ENCODERS

from fieldapp.i18n import SHANGHAI as LOCAL_ZONE

log = logging.getLogger(__name__)

# --- how the marks look -------------------------------------------------------------------------

WATERMARK_ANGLE = 30
"""Degrees, rising left to right: a diagonal mark cannot be cut away with a horizontal crop."""
WATERMARK_OPACITY = 0.4
"""Readable on light and dark pictures (white letters, dark outline) without hiding what is under them."""
FONT_FRACTION = 1 / 28
"""Letter height as a share of the picture's shorter side, so the mark reads the same on a thumbnail
and on a 50-MP photo."""
MIN_FONT_PX = 12
"""Below this Chinese characters stop being legible."""

REDACTION_CELLS = 6
"""Cells across the longer side of a redacted rectangle: few enough that a face or a line of text
cannot be recognised from their averages."""
MIN_CELL_PX = 12
"""Smallest cell, so a small rectangle (a plate seen from afar) is not left with readable cells."""
EDGE_TOLERANCE = 1e-6
"""Slack for x + w > 1 from the browser's float arithmetic (0.7 + 0.30000000000000004)."""

# --- what is decoded, and how copies are encoded ------------------------------------------------

IMAGE_FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
"""The formats the media pipeline decodes; every other Pillow decoder stays out of reach of uploads."""
VIDEO_ENCODERS = PREVIEW_ENCODERS
"""The same encoders as previews: a server that can make previews can make copies."""
VIDEO_CRF = "20"
"""libx264 quality of a copy: better than a preview's (28), since a copy may be all a party gets to see."""
VIDEO_KEYFRAME_S = 2
DEFAULT_FRAME_RATE = Fraction(25)
AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)

_KNOWN_CJK_FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",  # Debian, Ubuntu: fonts-noto-cjk
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",  # Arch
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",  # Fedora
    "/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
)
_MAX_FACES_IN_COLLECTION = 32

# warnings.catch_warnings() swaps process-wide state: threads take turns around Image.open().
_WARNINGS_LOCK = threading.Lock()
_IMAGE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, IndexError, MemoryError, Image.DecompressionBombError)


class MarkingError(ValueError):
    """The input cannot be made into a marked copy (not an image or video, a decompression bomb,
    undecodable). ``zh`` and ``en`` say why, for the page and for the log."""

    def __init__(self, zh: str, en: str | None = None):
        super().__init__(_bilingual(zh, en) if en else zh)
        self.zh, self.en = zh, en or zh


def _bilingual(zh: str, en: str) -> str:
    return f"{zh} / {en}"


# --- redaction rectangles -----------------------------------------------------------------------

@dataclass(frozen=True)
class Redaction:
    """A rectangle to blur, in fractions of the picture's width and height (0..1), so a rectangle
    drawn on a preview applies to the full-size copy and to every video frame."""

    x: float
    y: float
    w: float
    h: float

    def __post_init__(self) -> None:
        for name in ("x", "y", "w", "h"):
            value = _fraction(name, getattr(self, name))
            if not math.isfinite(value) or not 0 <= value <= 1:
                raise ValueError(_bilingual(f"遮挡区域的 {name} 须在 0 到 1 之间，实际为 {value!r}",
                                            f"redaction {name} must be between 0 and 1, got {value!r}"))
        if self.w == 0 or self.h == 0:
            raise ValueError(_bilingual("遮挡区域的宽度和高度不能为零",
                                        "a redaction must have a width and a height above zero"))
        for start, length, side in (("x", "w", "right"), ("y", "h", "bottom")):
            if getattr(self, start) + getattr(self, length) > 1 + EDGE_TOLERANCE:
                raise ValueError(_bilingual(
                    f"遮挡区域超出画面（{start} + {length} 大于 1）",
                    f"the redaction runs past the {side} edge of the picture ({start} + {length} > 1)"))

    @classmethod
    def parse(cls, value: Any) -> Redaction:
        """From ``{"x": .., "y": .., "w": .., "h": ..}`` as a page sends it; ValueError otherwise."""
        if not isinstance(value, Mapping):
            raise ValueError(_bilingual("遮挡区域须为包含 x、y、w、h 的对象",
                                        "a redaction must be an object with x, y, w and h"))
        keys = set(value)
        if keys != {"x", "y", "w", "h"}:
            missing = ", ".join(sorted({"x", "y", "w", "h"} - keys, key=str)) or "-"
            extra = ", ".join(sorted(map(str, keys - {"x", "y", "w", "h"}))) or "-"
            raise ValueError(_bilingual(f"遮挡区域须恰好包含 x、y、w、h（缺少：{missing}；多余：{extra}）",
                                        f"a redaction takes exactly x, y, w and h (missing: {missing}; "
                                        f"unexpected: {extra})"))
        return cls(**{name: _fraction(name, value[name]) for name in ("x", "y", "w", "h")})

    def box(self, size: tuple[int, int]) -> tuple[int, int, int, int]:
        """Pixel box (left, top, right, bottom) on a picture of ``size``, rounded outwards: what the
        reviewer drew on a small preview must be covered whole on the full-size picture."""
        width, height = size
        left = min(width - 1, max(0, math.floor(self.x * width)))
        top = min(height - 1, max(0, math.floor(self.y * height)))
        right = max(left + 1, min(width, math.ceil((self.x + self.w) * width)))
        bottom = max(top + 1, min(height, math.ceil((self.y + self.h) * height)))
        return left, top, right, bottom


def _fraction(name: str, value: Any) -> float:
    # bool is an int to Python, but true/false from a page is a mistake, not 1 and 0.
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(_bilingual(f"遮挡区域的 {name} 须为数字，实际为 {value!r}",
                                    f"redaction {name} must be a number, got {value!r}"))
    return float(value)


# --- what a mark says ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Mark:
    """Who a copy was made for, when, and under which grant."""

    viewer: str  # e.g. "张三 (370305001)"
    at: datetime  # when the copy was made, aware; drawn in Asia/Shanghai time
    grant_number: str  # e.g. "DY-2026-0007"

    def __post_init__(self) -> None:
        _require_line("viewer", "调阅人", self.viewer)
        _require_line("grant_number", "调阅编号", self.grant_number)
        if not isinstance(self.at, datetime) or self.at.utcoffset() is None:
            raise ValueError(_bilingual("制作时间须带时区", "the mark's time must be an aware datetime"))

    def lines(self) -> list[str]:
        local = self.at.astimezone(LOCAL_ZONE)
        return [f"调阅 {self.grant_number.strip()}", self.viewer.strip(), f"{local:%Y-%m-%d %H:%M} 北京时间"]

    def text(self) -> str:
        """The lines as stored in a copy's metadata, one a line."""
        return "\n".join(self.lines())


def _require_line(name: str, zh_name: str, value: Any) -> None:
    """A single printable line: a newline in a name would let it forge another line of the mark."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(_bilingual(f"{zh_name}不能为空", f"the mark's {name} is required"))
    if any(unicodedata.category(ch).startswith("C") for ch in value):
        raise ValueError(_bilingual(f"{zh_name}含有控制字符", f"the mark's {name} contains control characters"))


# --- photos -------------------------------------------------------------------------------------

def mark_image(data: bytes, mark: Mark | None, redactions: Sequence[Redaction] = (), *,
               max_side: int | None = None, quality: int = 88) -> bytes:
    """Return a new JPEG: EXIF orientation applied, optionally scaled so the longer side is at most
    ``max_side``, each redaction made unreadable, then the watermark tiled diagonally across the
    whole picture and the mark's lines written into the JPEG comment and EXIF ImageDescription.

    ``mark=None`` redacts only (previews). ``data`` is never modified. Raises MarkingError for bytes
    that are not a decodable JPEG, PNG, WebP or GIF, and for decompression bombs.

    The copy does not carry the original's EXIF (place, device, times): it is a picture to look at,
    and the original, with all of it, stays the evidence. Its colour profile is kept.
    """
    if max_side is not None and (not isinstance(max_side, int) or max_side < 1):
        raise ValueError(f"max_side must be a positive integer, got {max_side!r}")
    if not isinstance(quality, int) or not 1 <= quality <= 95:
        raise ValueError(f"quality must be an integer from 1 to 95, got {quality!r}")
    with _decoded_image(bytes(data), max_side) as source:
        icc = source.info.get("icc_profile") if source.mode == "RGB" else None
        picture = _to_rgb(ImageOps.exif_transpose(source))
    if max_side is not None:
        picture = _fit_within(picture, max_side)
    redact(picture, redactions)
    if mark is not None:
        _stamp_watermark(picture, mark)
    return _encode_jpeg(picture, mark, quality, icc)


def read_mark(jpeg: bytes) -> str | None:
    """The mark's lines stored in a copy's metadata (JPEG comment, else EXIF ImageDescription), or
    None when the JPEG carries none. Raises MarkingError for bytes that are not a JPEG."""
    try:
        with Image.open(io.BytesIO(jpeg), formats=["JPEG"]) as image:
            comment = image.info.get("comment")
            description = image.getexif().get(0x010E)
    except _IMAGE_ERRORS as exc:
        raise MarkingError("无法读取 JPEG 图片的元数据", f"cannot read the metadata of a JPEG: {exc}") from exc
    if comment:
        return _utf8(comment)
    if description:
        # Pillow reads EXIF ASCII as Latin-1; the copy wrote UTF-8 bytes there.
        return _utf8(description.encode("latin-1", "replace") if isinstance(description, str) else description)
    return None


def _utf8(raw: bytes | str) -> str:
    return raw if isinstance(raw, str) else raw.rstrip(b"\0").decode("utf-8", "replace")


@contextmanager
def _decoded_image(data: bytes, max_side: int | None) -> Iterator[Image.Image]:
    """``data`` opened as one of IMAGE_FORMATS and decoded; MarkingError for anything else."""
    with _opened_image(data) as image:
        try:
            if image.format == "JPEG" and max_side is not None:
                # libjpeg decodes at 1/2, 1/4 or 1/8 scale, never below max_side: less memory, same copy.
                image.draft("RGB", (max_side, max_side))
            image.load()
        except _IMAGE_ERRORS as exc:
            raise MarkingError("图片数据损坏或不完整，无法制作副本",
                               f"the image data is corrupt or truncated; no copy can be made: {exc}") from exc
        yield image


def _opened_image(data: bytes) -> Image.Image:
    """Open ``data`` (pixels not yet decoded), refusing decompression bombs.

    Pillow warns above Image.MAX_IMAGE_PIXELS and raises above twice it; the warning is made an
    error around open(), and the size is checked again after, so the limit holds even while another
    thread's catch_warnings() has the default filters back.
    """
    try:
        with _WARNINGS_LOCK, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=list(IMAGE_FORMATS))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _bomb() from exc
    except _IMAGE_ERRORS as exc:
        raise MarkingError("不是可识别的图片（支持 JPEG、PNG、WebP、GIF）",
                           "not an image this server reads (JPEG, PNG, WebP or GIF)") from exc
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and image.size[0] * image.size[1] > limit:
        image.close()
        raise _bomb()
    return image


def _bomb() -> MarkingError:
    return MarkingError("图片像素数超过安全上限（可能是解压缩炸弹），不制作副本",
                        "the image has more pixels than the safety limit (a possible decompression bomb); "
                        "no copy is made")


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB for JPEG; transparent parts become white, as a viewer shows them, not black."""
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", image.size, "white")
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image if image.mode == "RGB" else image.convert("RGB")


def _fit_within(image: Image.Image, max_side: int) -> Image.Image:
    """Scaled so the longer side is at most ``max_side``; never enlarged."""
    scale = max_side / max(image.size)
    if scale >= 1:
        return image
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)


def _encode_jpeg(picture: Image.Image, mark: Mark | None, quality: int, icc: bytes | None) -> bytes:
    options: dict[str, Any] = {"quality": quality, "optimize": True}
    if mark is not None:
        text = mark.text().encode("utf-8")
        exif = Image.Exif()
        exif[0x010E] = text  # ImageDescription; bytes, since Pillow would turn a str's Chinese into "?"
        options.update(comment=text, exif=exif.tobytes())
    if icc:
        options["icc_profile"] = icc
    out = io.BytesIO()
    picture.save(out, "JPEG", **options)
    return out.getvalue()


# --- redaction ----------------------------------------------------------------------------------

def redact(picture: Image.Image, redactions: Sequence[Redaction]) -> None:
    """Make each rectangle of an RGB ``picture`` unreadable, in place.

    Each rectangle is averaged into at most REDACTION_CELLS cells across (cells of at least
    MIN_CELL_PX), then blurred so the cells' edges do not outline what was there. Averaging keeps
    one value per cell, so no filter can bring the detail back.
    """
    for redaction in redactions:
        if not isinstance(redaction, Redaction):
            raise TypeError(f"expected a Redaction, got {type(redaction).__name__}")
        box = redaction.box(picture.size)
        picture.paste(_obscured(picture.crop(box)), box[:2])


def _obscured(region: Image.Image) -> Image.Image:
    width, height = region.size
    cell = max(MIN_CELL_PX, math.ceil(max(width, height) / REDACTION_CELLS))
    cells = (max(1, round(width / cell)), max(1, round(height / cell)))
    averaged = region.resize(cells, Image.Resampling.BOX)
    blocks = averaged.resize(region.size, Image.Resampling.NEAREST)
    return blocks.filter(ImageFilter.GaussianBlur(cell / 2))


# --- the watermark ------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Stamp:
    """One rotated, semi-transparent block of the mark's lines, and how far apart the copies go."""

    image: Image.Image  # RGBA
    along: float  # distance between stamps in a row, pixels along the text's direction
    across: float  # distance between rows


def _stamp_watermark(picture: Image.Image, mark: Mark) -> None:
    """Tile the mark over an RGB ``picture``, in place (no full-size overlay: photos can be 200 MP)."""
    stamp = _make_stamp(mark, picture.size)
    for left, top in _stamp_positions(picture.size, stamp):
        picture.paste(stamp.image, (left, top), stamp.image)


def watermark_overlay(size: tuple[int, int], mark: Mark) -> Image.Image:
    """The whole watermark for pictures of ``size`` as one RGBA layer, to composite onto many frames."""
    overlay = Image.new("RGBA", size, (0, 0, 0, 0))
    stamp = _make_stamp(mark, size)
    for left, top in _stamp_positions(size, stamp):
        _composite_clipped(overlay, stamp.image, left, top)
    return overlay


def _composite_clipped(target: Image.Image, layer: Image.Image, left: int, top: int) -> None:
    """alpha_composite at a position that may lie partly above or left of ``target``: clipped
    here, since older Pillow releases refuse a negative destination."""
    crop_left, crop_top = max(0, -left), max(0, -top)
    if crop_left >= layer.width or crop_top >= layer.height:
        return
    target.alpha_composite(layer, dest=(left + crop_left, top + crop_top), source=(crop_left, crop_top))


def _make_stamp(mark: Mark, size: tuple[int, int]) -> _Stamp:
    font_px = max(MIN_FONT_PX, round(min(size) * FONT_FRACTION))
    font = cjk_font(font_px)
    text = mark.text()
    outline = max(1, font_px // 14)
    spacing = font_px // 4
    measure = ImageDraw.Draw(Image.new("RGBA", (1, 1)))
    left, top, right, bottom = measure.multiline_textbbox((0, 0), text, font=font, spacing=spacing,
                                                          stroke_width=outline)
    pad = outline + 2
    block = Image.new("RGBA", (right - left + 2 * pad, bottom - top + 2 * pad), (0, 0, 0, 0))
    ImageDraw.Draw(block).multiline_text((pad - left, pad - top), text, font=font, fill=(255, 255, 255, 255),
                                         spacing=spacing, stroke_width=outline, stroke_fill=(0, 0, 0, 255))
    # Drawn opaque, then faded as a whole: where fill and outline meet, the result stays even.
    block.putalpha(block.getchannel("A").point(lambda a: round(a * WATERMARK_OPACITY)))
    rotated = block.rotate(WATERMARK_ANGLE, resample=Image.Resampling.BICUBIC, expand=True)
    return _Stamp(image=rotated, along=block.width + 3 * font_px, across=block.height + 2 * font_px)


def _stamp_positions(size: tuple[int, int], stamp: _Stamp) -> Iterator[tuple[int, int]]:
    """Top-left corners of the stamps covering a picture of ``size``: rows along the text's slant,
    every other row shifted by half a step, so no strip of the picture is free of the mark."""
    angle = math.radians(WATERMARK_ANGLE)
    along = (math.cos(angle), -math.sin(angle))  # the text's direction, y pointing down
    across = (math.sin(angle), math.cos(angle))
    cx, cy = size[0] / 2, size[1] / 2
    corners = [(x - cx, y - cy) for x in (0, size[0]) for y in (0, size[1])]
    us = [x * along[0] + y * along[1] for x, y in corners]
    vs = [x * across[0] + y * across[1] for x, y in corners]
    half_w, half_h = stamp.image.width / 2, stamp.image.height / 2
    for row in range(math.floor(min(vs) / stamp.across) - 1, math.ceil(max(vs) / stamp.across) + 2):
        shift = stamp.along / 2 if row % 2 else 0.0
        for column in range(math.floor(min(us) / stamp.along) - 1, math.ceil(max(us) / stamp.along) + 2):
            u, v = column * stamp.along + shift, row * stamp.across
            x = cx + u * along[0] + v * across[0]
            y = cy + u * along[1] + v * across[1]
            left, top = round(x - half_w), round(y - half_h)
            if left < size[0] and top < size[1] and left + stamp.image.width > 0 and top + stamp.image.height > 0:
                yield left, top


# --- fonts --------------------------------------------------------------------------------------

@lru_cache(maxsize=32)
def cjk_font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """A font of ``size`` pixels that covers Chinese: Noto Sans CJK SC when installed (Debian's
    fonts-noto-cjk), else another CJK font found on the usual paths; Pillow's default font, with a
    warning, when there is none — then Chinese is drawn as boxes and only Latin text reads."""
    found = _cjk_font_file()
    if found is not None:
        path, index = found
        return ImageFont.truetype(path, size, index=index)
    return ImageFont.load_default(size)


@cache
def _cjk_font_file() -> tuple[str, int] | None:
    """(path, face index) of the first CJK font that draws Chinese; None, logged once, when none does."""
    for path, index in _font_candidates():
        face = _simplified_chinese_face(path, index)
        if face is not None:
            return path, face
    log.warning("no CJK font found (install Debian's fonts-noto-cjk): Chinese in watermarks will be "
                "drawn as boxes")
    return None


def _font_candidates() -> Iterator[tuple[str, int | None]]:
    """fontconfig's choice first (index known), then the usual paths (index to be found)."""
    try:
        answer = subprocess.run(["fc-match", "-f", "%{file}|%{index}", "Noto Sans CJK SC:lang=zh-cn"],
                                capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        answer = ""
    path, _, index = answer.partition("|")
    if path and Path(path).is_file():
        yield path, int(index) if index.isdigit() else None
    for known in _KNOWN_CJK_FONTS:
        if Path(known).is_file():
            yield known, None


def _simplified_chinese_face(path: str, index: int | None) -> int | None:
    """The face of ``path`` to use: ``index`` if it draws Chinese; in a collection without a known
    index, the face named "... SC" (the same code points have other shapes in the Japanese, Korean
    and traditional faces: 直, 骨, 写), else the first face that draws Chinese."""
    if index is not None:
        font = _face(path, index)
        return index if font is not None and _draws_chinese(font) else None
    fallback = None
    for face in range(_MAX_FACES_IN_COLLECTION):
        font = _face(path, face)
        if font is None:
            break  # past the collection's last face
        if not _draws_chinese(font):
            continue
        if (font.getname()[0] or "").endswith(" SC"):
            return face
        fallback = face if fallback is None else fallback
    return fallback


def _face(path: str, index: int) -> ImageFont.FreeTypeFont | None:
    try:
        return ImageFont.truetype(path, 24, index=index)
    except OSError:
        return None


def _draws_chinese(font: ImageFont.FreeTypeFont) -> bool:
    """Two different Chinese characters drawn as two different shapes: not one missing-glyph box."""
    first, second = font.getmask("调"), font.getmask("阅")
    return bool(first.getbbox()) and bytes(first) != bytes(second)


# --- videos -------------------------------------------------------------------------------------

def mark_video(src_path: str | os.PathLike, dst_path: str | os.PathLike, mark: Mark | None,
               redactions: Sequence[Redaction] = (), *, max_height: int | None = None) -> None:
    """Write a marked, redacted copy of the video at ``src_path`` as an H.264 MP4 (MPEG-4 Part 2 if
    this build has no H.264 encoder) at ``dst_path``, with its frame rate, duration and sound (AAC).

    ``max_height`` scales the copy down (never up); sides are even, as yuv420p needs. The copy is
    written beside ``dst_path`` and renamed into place at the end, so a failure never leaves a
    half-written file there. Raises MarkingError when the source does not decode; a source that stops
    decoding part-way (a camera that lost power) gives a copy of the part that decodes, as its
    preview does. Sideways phone videos stay as stored (no rotation), like their previews, so
    rectangles drawn on a preview land on the same place.
    """
    if max_height is not None and (not isinstance(max_height, int) or max_height < 2):
        raise ValueError(f"max_height must be an integer of at least 2, got {max_height!r}")
    src, dst = Path(src_path), Path(dst_path)
    if not src.is_file():
        raise FileNotFoundError(f"no video at {src}")
    if dst.exists() and dst.samefile(src):
        raise ValueError("the copy cannot be written over its original (art. 30: the original never changes)")
    for redaction in redactions:
        if not isinstance(redaction, Redaction):
            raise TypeError(f"expected a Redaction, got {type(redaction).__name__}")
    fd, temporary = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".part")
    os.close(fd)
    try:
        _write_marked_video(src, Path(temporary), mark, tuple(redactions), max_height)
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())  # the rename must not publish a file whose bytes are still in memory
        os.replace(temporary, dst)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _write_marked_video(src: Path, target: Path, mark: Mark | None, redactions: tuple[Redaction, ...],
                        max_height: int | None) -> None:
    with _open_source(src) as source:
        video = source.streams.video[0]
        audio = source.streams.audio[0] if source.streams.audio else None
        size = _even_size(video.codec_context.width, video.codec_context.height, max_height)
        rate = _frame_rate(video)
        overlay = watermark_overlay(size, mark) if mark is not None else None
        with av.open(str(target), mode="w", format="mp4", options={"movflags": "+faststart"}) as out:
            if mark is not None:
                out.metadata["comment"] = mark.text()
            encoder = _add_video_encoder(out, size, rate)
            sound = _add_audio_encoder(out, audio) if audio is not None else None
            copier = _FrameCopier(out, encoder, sound, size, rate, overlay, redactions)
            copier.copy(source, video, audio)
            copier.flush()


@contextmanager
def _open_source(src: Path) -> Iterator[av.container.InputContainer]:
    """The source container, checked to hold a video stream this server will decode."""
    try:
        container = av.open(str(src), mode="r", metadata_errors="ignore")
    except Exception as exc:  # FFmpeg raises many types for input it cannot read
        raise MarkingError("无法读取视频文件", f"the file does not open as a video: {_reason(exc)}") from exc
    with container:
        if not container.streams.video:
            raise MarkingError("文件中没有视频画面", "the file has no video stream")
        context = container.streams.video[0].codec_context
        if not context.width or not context.height or context.width * context.height > MAX_DECODE_PIXELS:
            raise MarkingError("视频画面尺寸缺失或过大，无法解码",
                               "the video frame size is missing or too large to decode")
        yield container


class _FrameCopier:
    """Decodes the source's video and audio, marks each video frame and encodes both into ``out``."""

    def __init__(self, out: av.container.OutputContainer, encoder: av.video.stream.VideoStream,
                 sound: av.audio.stream.AudioStream | None, size: tuple[int, int], rate: Fraction,
                 overlay: Image.Image | None, redactions: tuple[Redaction, ...]):
        self.out, self.encoder, self.sound = out, encoder, sound
        self.size, self.time_base = size, 1 / rate
        self.overlay, self.redactions = overlay, redactions
        self.start = 0.0  # the source's time of the first picture: the copy's zero
        self.frames = 0
        self.last_pts = -1

    def copy(self, source: av.container.InputContainer, video: av.video.stream.VideoStream,
             audio: av.audio.stream.AudioStream | None) -> None:
        video.thread_type = "AUTO"
        self.start = _start_seconds(source, video)
        streams = [video] + ([audio] if audio is not None and self.sound is not None else [])
        packets = source.demux(streams)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except Exception as exc:  # the demuxer gave up: a cut file
                self._stopped(f"reading packets failed: {_reason(exc)}")
                return
            if not self._decode(packet):
                return

    def _decode(self, packet: av.Packet) -> bool:
        """False once the video stops decoding; a bad audio packet is only a gap in the sound."""
        try:
            frames = packet.decode()
        except Exception as exc:
            if packet.stream.type == "video":
                self._stopped(f"video decoding failed: {_reason(exc)}")
                return False
            return True
        for frame in frames:
            if packet.stream.type == "video":
                self._video_frame(frame)
            else:
                self._audio_frame(frame)
        return True

    def _stopped(self, why: str) -> None:
        if self.frames == 0:
            raise MarkingError("视频无法解码，无法制作副本", f"the video does not decode: {why}")
        log.warning("marked copy ends after %d frames: %s", self.frames, why)

    def _video_frame(self, frame: av.VideoFrame) -> None:
        seconds = self._seconds(frame, self.frames * float(self.time_base))
        # On the output's frame grid; a variable-rate frame that lands on a taken slot moves to the next.
        pts = max(self.last_pts + 1, round(seconds / self.time_base))
        picture = frame.to_image(width=self.size[0], height=self.size[1])  # scaled and RGB in one conversion
        redact(picture, self.redactions)
        if self.overlay is not None:
            # Pasting RGBA through its own alpha onto an opaque frame is alpha compositing, without
            # turning every frame into RGBA and back.
            picture.paste(self.overlay, (0, 0), self.overlay)
        marked = av.VideoFrame.from_image(picture).reformat(format="yuv420p")
        marked.pts, marked.time_base = pts, self.time_base
        self._mux(self.encoder.encode(marked))
        self.frames, self.last_pts = self.frames + 1, pts

    def _audio_frame(self, frame: av.AudioFrame) -> None:
        seconds = self._seconds(frame, None)
        if seconds is None or seconds < 0:
            return  # sound before the first picture has no place in the copy
        frame.pts = round(seconds * frame.sample_rate)
        frame.time_base = Fraction(1, frame.sample_rate)
        self._mux(self.sound.encode(frame))

    def _seconds(self, frame: av.frame.Frame, default: float | None) -> float | None:
        if frame.time is None:
            return default
        return frame.time - self.start

    def flush(self) -> None:
        if self.frames == 0:
            raise MarkingError("视频中没有可解码的画面", "no frame of the video decodes")
        self._mux(self.encoder.encode(None))
        if self.sound is not None:
            self._mux(self.sound.encode(None))

    def _mux(self, packets: list[av.Packet]) -> None:
        for packet in packets:
            self.out.mux(packet)


def _start_seconds(source: av.container.InputContainer, video: av.video.stream.VideoStream) -> float:
    """When the first picture is due, from the stream's header. Taken before decoding: audio
    packets arrive while the video decoder still holds its first frames back (B-frames), and
    waiting for the first picture would drop their sound."""
    if video.start_time is not None and video.time_base:
        return float(video.start_time * video.time_base)
    if source.start_time is not None:
        return source.start_time / av.time_base
    return 0.0


def _even_size(width: int, height: int, max_height: int | None) -> tuple[int, int]:
    """The copy's size: at most ``max_height`` high (never enlarged), aspect kept, sides even."""
    if max_height is not None and height > max_height:
        width, height = width * max_height / height, max_height
    return max(2, int(width) // 2 * 2), max(2, int(height) // 2 * 2)


def _frame_rate(video: av.video.stream.VideoStream) -> Fraction:
    """The source's frame rate, in terms MPEG-4 Part 2 also accepts (time base denominator < 65536)."""
    rate = video.average_rate or video.guessed_rate or video.base_rate
    if not rate or rate <= 0 or rate > 240:
        return DEFAULT_FRAME_RATE
    return Fraction(rate).limit_denominator(1001)


def _add_video_encoder(out: av.container.OutputContainer, size: tuple[int, int],
                       rate: Fraction) -> av.video.stream.VideoStream:
    name = _usable_encoder(size, rate)
    stream = out.add_stream(name, rate=rate)
    stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
    stream.codec_context.time_base = 1 / rate
    stream.codec_context.gop_size = max(1, round(VIDEO_KEYFRAME_S * rate))  # players can seek the copy
    stream.thread_type = "AUTO"
    if name == "mpeg4":
        stream.bit_rate = max(500_000, int(size[0] * size[1] * rate * 0.15))
    else:
        stream.options = {"preset": "veryfast", "crf": VIDEO_CRF}
    return stream


@lru_cache(maxsize=16)
def _usable_encoder(size: tuple[int, int], rate: Fraction) -> str:
    """An encoder can be listed and still fail to open (a build without it, a size it refuses)."""
    for name in VIDEO_ENCODERS:
        try:
            context = av.CodecContext.create(name, "w")
            context.width, context.height, context.pix_fmt = size[0], size[1], "yuv420p"
            context.time_base = 1 / rate
            context.open()
        except Exception:
            continue
        return name
    raise RuntimeError(f"no video encoder among {', '.join(VIDEO_ENCODERS)} opens in this PyAV build")


def _add_audio_encoder(out: av.container.OutputContainer,
                       audio: av.audio.stream.AudioStream) -> av.audio.stream.AudioStream:
    """AAC at the source's rate when AAC allows it; mono stays mono, anything else becomes stereo
    (body cameras record one or two channels). PyAV's wheels carry FFmpeg's own AAC encoder, and
    the encoder converts sample format and frame size itself."""
    source_rate = audio.codec_context.sample_rate or 48000
    rate = source_rate if source_rate in AAC_RATES else 48000
    layout = "mono" if audio.codec_context.channels == 1 else "stereo"
    return out.add_stream("aac", rate=rate, layout=layout)


def _reason(exc: BaseException) -> str:
    """FFmpeg's words without the errno and file path PyAV adds."""
    if isinstance(exc, av.FFmpegError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


__all__ = ["MarkingError", "Mark", "Redaction", "cjk_font", "mark_image", "mark_video", "read_mark", "redact",
           "watermark_overlay"]
