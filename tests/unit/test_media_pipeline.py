"""The Pillow pipeline on completed originals: EXIF into fields, oriented previews through draft mode,
bad images flagged (never a crash), huge images decoded at reduced scale, the original untouched.

Huge JPEGs are written by hand rather than encoded by Pillow (which needs the full-size image in
memory, 600 MB and ~2 s for 200 MP): a mid-grey image has every DCT coefficient zero, so every 8×8
block is the same 6 bits with the standard tables, and a real, fully decodable 200-MP JPEG is a few
megabytes of a repeated 3-byte pattern, written in milliseconds.
"""
from __future__ import annotations

import hashlib
import io
import json
import struct
import subprocess
import sys
import time
import zlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from PIL import Image

from fieldapp.media import pipeline
from fieldapp.media.pipeline import MAX_IMAGE_PIXELS, process
from fieldapp.media.sniff import UnsupportedMedia

REPO_ROOT = Path(__file__).resolve().parents[2]


# --- building test files ------------------------------------------------------------------------

def _segments(jpeg: bytes) -> list[tuple[int, bytes]]:
    """(marker, whole segment) up to SOS, of a JPEG Pillow wrote."""
    out, i = [], 2
    while i < len(jpeg):
        marker = jpeg[i + 1]
        length = struct.unpack(">H", jpeg[i + 2:i + 4])[0]
        out.append((marker, jpeg[i:i + 2 + length]))
        if marker == 0xDA:
            break
        i += 2 + length
    return out


def _exif_app1(exif: Image.Exif) -> bytes:
    payload = exif.tobytes()  # starts with b"Exif\0\0"
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def with_exif(jpeg: bytes, exif: Image.Exif) -> bytes:
    """The same JPEG with an EXIF APP1 segment right after SOI."""
    return jpeg[:2] + _exif_app1(exif) + jpeg[2:]


def grey_jpeg(width: int, height: int, exif: Image.Exif | None = None) -> bytes:
    """A genuine baseline 4:2:0 JPEG of ``width``×``height`` mid-grey pixels, built in milliseconds."""
    small = io.BytesIO()
    Image.new("RGB", (16, 16)).save(small, "JPEG", quality=90, subsampling=2)
    tables = b"".join(seg for marker, seg in _segments(small.getvalue()) if marker in (0xDB, 0xC4))
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3) + \
        bytes([1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1])
    sos = b"\xff\xda" + struct.pack(">HB", 12, 3) + bytes([1, 0, 2, 0, 3, 0, 0, 63, 0])
    blocks = -(-width // 16) * -(-height // 16) * 6
    # DC difference 0 ("00") then end of block ("1010") with the standard luminance tables.
    tail = {0: b"", 1: b"\x2b", 2: b"\x28\xaf", 3: b"\x28\xa2\xbf"}[blocks % 4]
    scan = b"\x28\xa2\x8a" * (blocks // 4) + tail
    app1 = _exif_app1(exif) if exif is not None else b""
    return b"\xff\xd8" + app1 + tables + sof + sos + scan + b"\xff\xd9"


def claiming(jpeg: bytes, width: int, height: int) -> bytes:
    """The same baseline JPEG with its SOF0 header patched to claim ``width``×``height``."""
    data = bytearray(jpeg)
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def patched_sof(width: int, height: int) -> bytes:
    """A tiny JPEG whose header claims ``width``×``height`` (the data is for 64×64)."""
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 200, 10)).save(out, "JPEG")
    return claiming(out.getvalue(), width, height)


def animated_gif(colours: list[tuple[int, int, int]], size: tuple[int, int] = (400, 300),
                 duration: int = 120) -> bytes:
    """An animation of one solid colour per frame, as a phone's GIF export writes it."""
    frames = [Image.new("RGB", size, colour) for colour in colours]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=duration, loop=0)
    return out.getvalue()


def gif_claiming(width: int, height: int, *, where: str) -> bytes:
    """A 1×1 GIF whose logical screen (``where="screen"``) or first frame (``"frame"``) claims
    ``width``×``height``: a GIF decompression bomb of a few bytes."""
    out = io.BytesIO()
    Image.new("P", (1, 1)).save(out, "GIF")
    data = bytearray(out.getvalue())
    # The image descriptor: ",", left 0, top 0, width 1, height 1 (little-endian).
    at = 6 if where == "screen" else data.index(b"\x2c\x00\x00\x00\x00\x01\x00\x01\x00") + 5
    data[at:at + 4] = struct.pack("<HH", width, height)
    return bytes(data)


def photo_exif(*, offset: str | None = None, orientation: int | None = None) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "HUAWEI"
    exif[0x0110] = "ALN-AL00"
    if orientation:
        exif[0x0112] = orientation
    sub = exif.get_ifd(0x8769)
    sub[0x9003] = "2025:06:01 10:20:30"
    sub[0x9291] = "25"
    if offset:
        sub[0x9011] = offset
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (36.0, 49.0, 12.5)     # 36.820139 N
    gps[3], gps[4] = "E", (118.0, 18.0, 30.25)   # 118.308403 E
    gps[31] = 4.2
    return exif


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def decoded(jpeg: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(jpeg))
    assert im.format == "JPEG"
    im.load()
    return im


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def photo_12mp(media_dir) -> bytes:
    """A 4000×3000 JPEG (gradient and shapes, landscape, no EXIF), encoded once per session."""
    gradient = Image.linear_gradient("L").resize((4000, 3000))
    im = Image.merge("RGB", (Image.new("L", (4000, 3000), 40), gradient,
                             gradient.transpose(Image.Transpose.ROTATE_90).resize((4000, 3000))))
    im.paste((250, 250, 250), (0, 0, 2000, 300))  # a white band across the top-left
    out = io.BytesIO()
    im.save(out, "JPEG", quality=90)
    return out.getvalue()


def write(media_dir: Path, name: str, data: bytes) -> Path:
    path = media_dir / name
    path.write_bytes(data)
    return path


# --- photos -------------------------------------------------------------------------------------

def test_12mp_photo_exif_without_offset_is_read_as_shanghai_time(media_dir, photo_12mp):
    path = write(media_dir, "a.jpg", with_exif(photo_12mp, photo_exif()))
    before = sha256(path)
    result = process(path, declared_mime="image/jpeg")
    assert sha256(path) == before
    assert (result.kind, result.mime, result.width, result.height) == ("image", "image/jpeg",
                                                                        4000, 3000)
    assert result.size_bytes == path.stat().st_size
    assert result.flags == []
    exif = result.exif
    assert exif.taken_at == datetime(2025, 6, 1, 10, 20, 30, 250000,
                                     tzinfo=timezone(timedelta(hours=8)))
    assert exif.taken_at.utcoffset() == timedelta(hours=8)
    assert str(exif.taken_at.tzinfo) == "Asia/Shanghai"
    assert exif.taken_at_zone_assumed is True
    assert (exif.lat_e6, exif.lon_e6, exif.gps_accuracy_m) == (36_820_139, 118_308_403, 5)
    assert (exif.make, exif.model, exif.orientation) == ("HUAWEI", "ALN-AL00", None)
    preview, thumb = decoded(result.previews["preview"]), decoded(result.previews["thumb"])
    assert preview.size == (1280, 960)
    assert thumb.size == (320, 240)
    assert preview.getpixel((10, 10))[0] > 230 and preview.getpixel((1270, 950))[0] < 60
    assert not preview.getexif()  # previews carry no GPS


def test_offset_time_original_gives_the_zone(media_dir, photo_12mp):
    path = write(media_dir, "b.jpg", with_exif(photo_12mp, photo_exif(offset="+09:00")))
    exif = process(path).exif
    assert exif.taken_at == datetime(2025, 6, 1, 1, 20, 30, 250000, tzinfo=timezone.utc)
    assert exif.taken_at.utcoffset() == timedelta(hours=9)
    assert exif.taken_at_zone_assumed is False


def test_orientation_6_previews_are_rotated_and_the_original_is_untouched(media_dir, photo_12mp):
    path = write(media_dir, "c.jpg", with_exif(photo_12mp, photo_exif(orientation=6)))
    before = sha256(path)
    result = process(path)
    assert sha256(path) == before
    assert result.exif.orientation == 6
    assert (result.width, result.height) == (4000, 3000)  # as stored
    preview, thumb = decoded(result.previews["preview"]), decoded(result.previews["thumb"])
    assert preview.size == (960, 1280)
    assert thumb.size == (240, 320)
    # Rotated 90° clockwise for display: the white band (top-left) is now at the top right.
    assert preview.getpixel((950, 10))[0] > 230 and preview.getpixel((10, 10))[0] < 230
    assert max(preview.size) <= 1280 and max(thumb.size) <= 320


def test_png_named_jpg_is_the_png_it_is(media_dir):
    out = io.BytesIO()
    Image.new("RGBA", (2000, 500), (0, 0, 255, 0)).save(out, "PNG")
    path = write(media_dir, "photo.jpg", out.getvalue())
    result = process(path, declared_mime="image/jpeg")
    assert result.mime == "image/png"
    assert result.flags == ["declared_type_mismatch"]
    preview = decoded(result.previews["preview"])
    assert preview.size == (1280, 320)
    assert preview.getpixel((5, 5)) == (255, 255, 255)  # transparency over white


def test_webp_gets_bounded_previews(media_dir):
    out = io.BytesIO()
    Image.new("RGB", (1600, 1200), (20, 120, 20)).save(out, "WEBP")
    result = process(write(media_dir, "d.webp", out.getvalue()))
    assert result.mime == "image/webp" and result.flags == []
    assert decoded(result.previews["preview"]).size == (1280, 960)


# --- damaged files -------------------------------------------------------------------------------

def test_truncated_jpeg_is_flagged_and_still_previewed(media_dir, photo_12mp):
    path = write(media_dir, "t.jpg", photo_12mp[:len(photo_12mp) // 2])
    before = sha256(path)
    result = process(path)
    assert sha256(path) == before
    assert result.flags == ["truncated"]
    assert (result.width, result.height) == (4000, 3000)
    assert decoded(result.previews["preview"]).size == (1280, 960)
    assert result.messages[0]["code"] == "truncated" and "截断" in result.messages[0]["zh"]
    from PIL import ImageFile
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_corrupt_bytes_after_a_jpeg_header_are_flagged_without_preview(media_dir):
    data = b"\xff\xd8\xff\xe0\x00\x10" + bytes(range(256)) * 40
    result = process(write(media_dir, "corrupt-header.jpg", data))
    assert result.mime == "image/jpeg"
    assert result.flags == ["corrupt"]
    assert result.previews == {} and result.width is None


def test_garbage_in_the_scan_is_flagged_corrupt(media_dir):
    """libjpeg only warns about a bad marker inside the scan (Pillow hides the warning): the
    pipeline finds it itself and keeps the partial preview."""
    out = io.BytesIO()
    Image.effect_noise((640, 480), 50).convert("RGB").save(out, "JPEG")
    good = out.getvalue()
    scan = good.index(b"\xff\xda") + 14
    data = good[:scan + 2000] + b"\xff\x01" + bytes(range(256)) * 40
    result = process(write(media_dir, "corrupt-scan.jpg", data))
    assert result.flags == ["corrupt"]
    assert decoded(result.previews["preview"]).size == (640, 480)
    assert process(write(media_dir, "good.jpg", good)).flags == []
    # No false alarm for restart markers, or for data after EOI (MPO second pictures, trailers).
    restart = io.BytesIO()
    Image.effect_noise((640, 480), 50).convert("RGB").save(restart, "JPEG", restart_marker_blocks=4)
    assert restart.getvalue().count(b"\xff\xd0")
    assert process(write(media_dir, "restart.jpg", restart.getvalue())).flags == []
    assert process(write(media_dir, "trailer.jpg", good + good)).flags == []


@pytest.fixture(scope="session")
def photo_640() -> bytes:
    """A whole 640×480 baseline JPEG (4:2:0) with detail down to its last row."""
    out = io.BytesIO()
    Image.effect_noise((640, 480), 60).convert("RGB").save(out, "JPEG", quality=90)
    return out.getvalue()


@pytest.mark.parametrize(("width", "height"), [
    (20000, 10000),   # 200 MP claimed, under the bomb limit: only the data can tell
    (640, 960),       # twice as tall: the real picture on top, nothing below
    (1280, 480),      # twice as wide: the rows of the real picture no longer line up
])
def test_a_header_claiming_more_than_the_data_holds_is_flagged_and_not_previewed(
        media_dir, photo_640, width, height):
    path = write(media_dir, f"claims-{width}x{height}.jpg", claiming(photo_640, width, height))
    before = sha256(path)
    result = process(path, declared_mime="image/jpeg")
    assert sha256(path) == before
    assert result.flags == ["dimensions_mismatch"]
    assert (result.width, result.height) == (width, height)  # what the header claims, as stored
    # A preview would be mostly the decoder's grey fill, shown as if it were the photo: a lead
    # gets the flag and the original instead.
    assert result.previews == {}
    [message] = result.messages
    assert "尺寸" in message["zh"] and "未生成预览" in message["zh"]
    assert "header" in message["en"] and "no preview" in message["en"]


def _jpeg(im: Image.Image, **params) -> bytes:
    out = io.BytesIO()
    im.save(out, "JPEG", **params)
    return out.getvalue()


def _flat_bottom(size: tuple[int, int]) -> Image.Image:
    photo = Image.effect_noise(size, 60).convert("RGB")
    photo.paste((235, 235, 240), (0, size[1] // 2, size[0], size[1]))  # an overcast sky, upside down
    return photo


@pytest.mark.parametrize("name", ["solid", "solid 4:4:4", "grey", "cmyk", "flat bottom half", "odd size",
                                  "decoded at a quarter scale", "a second picture after the first"])
def test_whole_pictures_with_a_flat_bottom_are_not_flagged(media_dir, name):
    """A flat last row is what the decoder's fill looks like: pictures that really end flat must
    still pass the check that follows."""
    data = {
        "solid": lambda: _jpeg(Image.new("RGB", (640, 480), (90, 140, 200))),
        "solid 4:4:4": lambda: _jpeg(Image.new("RGB", (640, 480), (128, 128, 128)), subsampling=0),
        "grey": lambda: _jpeg(Image.new("L", (640, 480), 30)),
        "cmyk": lambda: _jpeg(Image.new("CMYK", (640, 480), (0, 0, 0, 0))),
        "flat bottom half": lambda: _jpeg(_flat_bottom((2000, 1500)), quality=90),
        "odd size": lambda: _jpeg(Image.new("RGB", (641, 479), (10, 10, 10))),
        "decoded at a quarter scale": lambda: grey_jpeg(6000, 5200),
        # As MPO files and some cameras append one: the check reads up to the first picture's end.
        "a second picture after the first": lambda: grey_jpeg(640, 480) + grey_jpeg(64, 64),
    }[name]()
    result = process(write(media_dir, f"flat-{name}.jpg", data))
    assert result.flags == []
    assert sorted(result.previews) == ["preview", "thumb"]


# --- GIF ----------------------------------------------------------------------------------------

def test_an_animated_gif_is_stored_as_evidence_previewed_by_its_first_frame_and_counted(media_dir):
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (250, 250, 250), (0, 0, 0)]
    path = write(media_dir, "screen-recording.gif", animated_gif(colours))
    before = sha256(path)
    result = process(path, declared_mime="image/gif")
    assert sha256(path) == before
    assert (result.kind, result.mime, result.width, result.height) == ("image", "image/gif", 400, 300)
    assert result.flags == ["animated"]
    assert result.frames == 5
    preview, thumb = decoded(result.previews["preview"]), decoded(result.previews["thumb"])
    assert preview.size == (400, 300) and thumb.size == (320, 240)  # never enlarged
    assert preview.getpixel((200, 150)) == pytest.approx((200, 30, 30), abs=8)  # the first frame
    [message] = result.messages
    assert "第一帧" in message["zh"] and "first frame" in message["en"]


def test_a_single_frame_gif_is_a_plain_image(media_dir):
    im = Image.new("P", (300, 200), 0)
    im.putpalette([0, 0, 0, 220, 20, 20] + [0, 0, 0] * 254)
    im.paste(1, (100, 50, 200, 150))
    out = io.BytesIO()
    im.save(out, "GIF", transparency=0)
    result = process(write(media_dir, "still.gif", out.getvalue()), declared_mime="image/gif")
    assert (result.mime, result.flags, result.frames) == ("image/gif", [], 1)
    preview = decoded(result.previews["preview"])
    assert preview.size == (300, 200)
    assert preview.getpixel((5, 5)) == pytest.approx((255, 255, 255), abs=3)  # transparency over white
    assert preview.getpixel((150, 100)) == pytest.approx((220, 20, 20), abs=8)


def test_a_gif_declared_as_a_jpeg_is_the_gif_its_bytes_show(media_dir):
    result = process(write(media_dir, "gif-named.jpg", animated_gif([(1, 2, 3), (4, 5, 6)])),
                     declared_mime="image/jpeg")
    assert result.mime == "image/gif"
    assert result.flags == ["declared_type_mismatch", "animated"]


@pytest.mark.parametrize(("where", "width", "height"), [
    ("screen", 20000, 15000),   # 300 MP: Pillow only warns
    ("screen", 24000, 22000),   # 528 MP: Pillow raises
    ("frame", 24000, 22000),    # a 1×1 screen whose first frame claims 528 MP
])
def test_a_gif_decompression_bomb_is_flagged_and_not_decoded(media_dir, where, width, height):
    path = write(media_dir, f"bomb-{where}-{width}.gif", gif_claiming(width, height, where=where))
    before = sha256(path)
    started = time.monotonic()
    result = process(path)
    assert time.monotonic() - started < 2
    assert sha256(path) == before
    assert result.mime == "image/gif"
    assert "decompression_bomb" in result.flags
    assert result.previews == {}


def test_a_gif_too_large_to_walk_is_flagged_animated_without_a_frame_count(media_dir, monkeypatch):
    """Counting frames walks the whole file: above a size it is left undone, never guessed."""
    data = animated_gif([(200, 30, 30), (30, 200, 30), (30, 30, 200)])
    monkeypatch.setattr(pipeline, "GIF_FRAME_COUNT_MAX_BYTES", len(data) - 1)
    result = process(write(media_dir, "long.gif", data))
    assert result.flags == ["animated"] and result.frames is None
    assert decoded(result.previews["preview"]).getpixel((10, 10)) == pytest.approx((200, 30, 30), abs=8)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_other_animations_are_flagged_and_counted_like_gif(media_dir, fmt):
    frames = [Image.new("RGB", (160, 120), colour) for colour in ((200, 30, 30), (30, 200, 30))]
    out = io.BytesIO()
    frames[0].save(out, fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    result = process(write(media_dir, f"animated.{fmt.lower()}", out.getvalue()))
    assert (result.flags, result.frames) == (["animated"], 2)
    assert decoded(result.previews["preview"]).getpixel((80, 60)) == pytest.approx((200, 30, 30), abs=8)


def test_a_gif_cut_in_a_later_frame_is_flagged_and_keeps_its_first_frame_preview(media_dir):
    data = animated_gif([(200, 30, 30), (30, 200, 30), (30, 30, 200)])
    # Pillow writes a graphic control extension (8 bytes) before each frame's image descriptor.
    second_frame = data.index(b"\x21\xf9\x04", data.index(b"\x21\xf9\x04") + 1) + 8
    assert data[second_frame] == 0x2C
    result = process(write(media_dir, "cut.gif", data[:second_frame + 5]))
    assert result.mime == "image/gif"
    assert result.flags == ["corrupt"] and result.frames is None
    assert decoded(result.previews["preview"]).getpixel((10, 10)) == pytest.approx((200, 30, 30), abs=8)


def test_empty_or_unsupported_bytes_raise_the_sniff_refusal(media_dir):
    with pytest.raises(UnsupportedMedia) as caught:
        process(write(media_dir, "empty.jpg", b""))
    assert caught.value.code == "empty"
    with pytest.raises(UnsupportedMedia) as caught:
        process(write(media_dir, "x.jpg", b"<html><script>alert(1)</script>"))
    assert caught.value.code == "html"


# --- decompression bombs and huge photos ----------------------------------------------------------

def test_limit_lets_200mp_phone_photos_through():
    assert Image.MAX_IMAGE_PIXELS == MAX_IMAGE_PIXELS == 250_000_000
    assert 16320 * 12240 < MAX_IMAGE_PIXELS


def test_grey_jpeg_builder_makes_a_decodable_jpeg():
    im = decoded(grey_jpeg(40, 24))
    assert im.size == (40, 24)
    assert im.getextrema() == ((128, 128),) * 3


@pytest.mark.parametrize(("width", "height", "zone"), [
    (20000, 15000, "warning"),   # 300 MP: between the two limits, Pillow only warns
    (24000, 22000, "error"),     # 528 MP: above twice the limit, Pillow raises
])
def test_fake_bomb_header_is_flagged_never_a_crash(media_dir, width, height, zone):
    assert (width * height > 2 * MAX_IMAGE_PIXELS) == (zone == "error")
    assert width * height > MAX_IMAGE_PIXELS
    path = write(media_dir, f"fake-{zone}.jpg", patched_sof(width, height))
    before = sha256(path)
    result = process(path)
    assert sha256(path) == before
    # The header claims far more than its 64×64 of data: a bomb by the header, and not previewed
    # as if the claimed picture were there.
    assert result.flags == ["decompression_bomb", "dimensions_mismatch"]
    assert (result.width, result.height) == (width, height)
    assert result.previews == {}


def test_pillow_warning_zone_is_really_a_warning(media_dir):
    """Guard the premise of the test above: Pillow warns (not raises) between the limits."""
    path = write(media_dir, "fake-warning-check.jpg", patched_sof(20000, 15000))
    with pytest.warns(Image.DecompressionBombWarning):
        Image.open(path).close()
    with pytest.raises(Image.DecompressionBombError):
        Image.open(write(media_dir, "fake-error-check.jpg", patched_sof(24000, 22000)))


@pytest.fixture(scope="session")
def bombs(media_dir) -> dict[str, Path]:
    return {
        "warning": write(media_dir, "bomb-300mp.jpg", grey_jpeg(20000, 15000)),
        "error": write(media_dir, "bomb-528mp.jpg", grey_jpeg(24000, 22000)),
    }


@pytest.mark.parametrize("zone", ["warning", "error"])
def test_genuine_bomb_jpeg_gets_a_draft_preview_because_that_is_safe(bombs, zone):
    path = bombs[zone]
    before = sha256(path)
    started = time.monotonic()
    result = process(path)
    assert time.monotonic() - started < 5
    assert sha256(path) == before
    assert result.flags == ["decompression_bomb"]
    preview = decoded(result.previews["preview"])
    assert max(preview.size) == 1280
    assert preview.getpixel((100, 100)) == pytest.approx((128, 128, 128), abs=2)


def test_bomb_too_big_even_at_one_eighth_is_not_decoded(media_dir):
    path = write(media_dir, "fake-65k.jpg", patched_sof(65000, 65000))
    result = process(path)
    assert result.flags == ["decompression_bomb", "too_large_to_preview"]
    assert result.previews == {}


def test_huge_png_is_flagged_and_not_decoded(media_dir):
    out = io.BytesIO()
    Image.new("L", (1, 1)).save(out, "PNG")
    data = bytearray(out.getvalue())  # IHDR width/height at 16..24
    data[16:24] = struct.pack(">II", 30000, 30000)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    result = process(write(media_dir, "huge.png", bytes(data)))
    assert result.mime == "image/png"
    assert "decompression_bomb" in result.flags and result.previews == {}


@pytest.fixture(scope="session")
def photo_200mp(media_dir) -> Path:
    exif = photo_exif(orientation=6)
    return write(media_dir, "200mp.jpg", grey_jpeg(16320, 12240, exif))


def test_200mp_phone_jpeg_is_previewed_through_draft_mode(photo_200mp):
    """Decoded at 1/8 scale (2040×1530), never at full size: fast and memory-light.

    Run in a fresh interpreter so its peak RSS is the pipeline's alone: a full-size decode would
    need 600 MB for the pixels alone."""
    script = (
        "import json, sys, time\n"
        # VmHWM is this process's own peak: ru_maxrss survives exec and would report pytest's.
        "def peak_rss_mb():\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith('VmHWM:'):\n"
        "            return int(line.split()[1]) / 1024\n"
        "from pathlib import Path\n"
        "from PIL import Image\n"
        "from fieldapp.media.pipeline import process\n"
        "t = time.process_time()\n"
        "r = process(Path(sys.argv[1]))\n"
        "cpu = time.process_time() - t\n"
        "im = Image.open(Path(sys.argv[1])); im.draft('RGB', (1280, 1280))\n"
        "print(json.dumps({'flags': r.flags, 'size': [r.width, r.height], 'cpu': cpu,\n"
        "  'draft': list(im.size), 'previews': sorted(r.previews), 'orientation': r.exif.orientation,\n"
        "  'preview_size': list(Image.open(__import__('io').BytesIO(r.previews['preview'])).size),\n"
        "  'rss_mb': peak_rss_mb()}))\n"
    )
    before = sha256(photo_200mp)
    done = subprocess.run([sys.executable, "-c", script, str(photo_200mp)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=60, check=True)
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert sha256(photo_200mp) == before
    assert out["flags"] == []
    assert out["size"] == [16320, 12240]
    assert out["draft"] == [16320 // 8, 12240 // 8]
    assert out["previews"] == ["preview", "thumb"]
    assert out["orientation"] == 6 and out["preview_size"] == [960, 1280]
    assert out["cpu"] < 3
    assert out["rss_mb"] < 250, out


def test_progressive_jpeg_above_the_full_decode_limit_is_not_decoded(media_dir, monkeypatch):
    out = io.BytesIO()
    Image.new("RGB", (800, 600), (1, 2, 3)).save(out, "JPEG", progressive=True)
    monkeypatch.setattr(pipeline, "FULL_DECODE_MAX_PIXELS", 400_000)
    result = process(write(media_dir, "progressive.jpg", out.getvalue()))
    assert result.flags == ["too_large_to_preview"] and result.previews == {}


# --- HEIC, video, audio ----------------------------------------------------------------------------

def _ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = major + b"\x00\x00\x00\x00" + b"".join(compatible)
    return struct.pack(">I", 8 + len(body)) + b"ftyp" + body + b"\x00\x00\x00\x10mdat" + b"\x00" * 8


def test_heic_is_stored_not_decoded_with_a_clear_message(media_dir):
    path = write(media_dir, "IMG_0001.HEIC", _ftyp(b"heic", b"mif1", b"heic"))
    before = sha256(path)
    result = process(path, declared_mime="image/heic")
    assert sha256(path) == before
    assert (result.kind, result.mime) == ("image", "image/heic")
    assert result.flags == ["heic_not_decoded"]
    assert result.previews == {}
    [message] = result.messages
    assert "HEIC" in message["zh"] and "按原样保存" in message["zh"] and "手机" in message["zh"]
    assert "does not decode HEIC" in message["en"]


@pytest.mark.parametrize(("head", "declared", "mime", "flags"), [
    (_ftyp(b"isom", b"isom", b"avc1"), "video/mp4", "video/mp4", []),
    (_ftyp(b"qt  ", b"qt  "), "video/quicktime", "video/quicktime", []),
    (_ftyp(b"M4A ", b"M4A ", b"isom"), "audio/x-m4a", "audio/mp4", []),
    (_ftyp(b"3gp4", b"3gp4"), "audio/3gpp", "video/3gpp", []),
    (b"#!AMR\n" + b"\x3c" * 64, "audio/amr", "audio/amr", []),
    (_ftyp(b"isom", b"isom"), "image/jpeg", "video/mp4", ["declared_type_mismatch"]),
])
def test_video_and_audio_are_typed_and_sized_not_decoded(media_dir, head, declared, mime, flags):
    path = write(media_dir, "clip.bin", head + b"\x00" * 5000)
    result = process(path, declared_mime=declared)
    assert result.mime == mime and result.kind in ("video", "audio")
    assert result.size_bytes == len(head) + 5000
    assert result.flags == flags and result.previews == {}
    assert result.width is None
