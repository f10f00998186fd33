"""Marked copies of photos and videos handed out under an access grant (art. 29) and redaction on the
copies only (art. 30): the mark is visible and machine-readable, Chinese is drawn with real glyphs,
redacted detail is gone rather than softened, bad input is refused, and the source never changes.

Pictures are compared with Pillow alone (no numpy): ImageStat for means and variances, a plain
Pearson correlation over the few thousand pixels of a region.
"""
from __future__ import annotations

import hashlib
import io
import math
import random
import re
import subprocess
from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path

import av
import pytest
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageStat

from fieldapp.records import marking
from fieldapp.records.marking import (
    Mark,
    MarkingError,
    Redaction,
    cjk_font,
    mark_image,
    mark_video,
    read_mark,
    watermark_overlay,
)
from tests.conftest import skip_or_fail
from tests.support.videos import make_video, truncate

MARK = Mark(viewer="张三 (370305001)", at=datetime(2026, 12, 5, 0, 30, tzinfo=UTC), grant_number="DY-2026-0007")
RECT = Redaction(x=0.25, y=0.25, w=0.25, h=0.25)  # on 640×480: (160, 120)-(320, 240), on JPEG block edges
SIZE = (640, 480)


# --- building and measuring pictures ------------------------------------------------------------

def smooth_picture(size: tuple[int, int] = SIZE) -> Image.Image:
    """Soft colour gradients: JPEG keeps them almost exactly, so any visible change is ours."""
    across = Image.linear_gradient("L").rotate(90).resize(size)
    down = Image.linear_gradient("L").resize(size)
    return Image.merge("RGB", (across, down, Image.new("L", size, 128)))


def noise(size: tuple[int, int], seed: int = 1) -> Image.Image:
    """Grey random noise: the most detail a region can hold, and nothing a blur could guess."""
    data = random.Random(seed).randbytes(size[0] * size[1])
    return Image.frombytes("L", size, data).convert("RGB")


def with_noise_in(picture: Image.Image, box: tuple[int, int, int, int], seed: int = 1) -> Image.Image:
    detailed = picture.copy()
    detailed.paste(noise((box[2] - box[0], box[3] - box[1]), seed), box[:2])
    return detailed


def jpeg(picture: Image.Image, quality: int = 95, **options) -> bytes:
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=quality, **options)
    return out.getvalue()


def decode(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGB")


def variance(picture: Image.Image, box: tuple[int, int, int, int]) -> float:
    return ImageStat.Stat(picture.crop(box).convert("L")).var[0]


def correlation(a: Image.Image, b: Image.Image, box: tuple[int, int, int, int]) -> float:
    """Pearson correlation of the luma of ``a`` and ``b`` inside ``box``."""
    xs = a.crop(box).convert("L").tobytes()
    ys = b.crop(box).convert("L").tobytes()
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    cov = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sx = math.sqrt(sum((x - mx) ** 2 for x in xs))
    sy = math.sqrt(sum((y - my) ** 2 for y in ys))
    return cov / (sx * sy) if sx and sy else 0.0


def difference(a: Image.Image, b: Image.Image) -> Image.Image:
    """Per pixel, the largest change over the three channels."""
    red, green, blue = ImageChops.difference(a, b).split()
    return ImageChops.lighter(ImageChops.lighter(red, green), blue)


def share_above(diff: Image.Image, threshold: int, mask: Image.Image | None = None) -> float:
    """Share of pixels (under ``mask``) whose change is above ``threshold``."""
    histogram = diff.histogram(mask)
    total = sum(histogram)
    return sum(histogram[threshold + 1:]) / total


def mean_under(diff: Image.Image, mask: Image.Image) -> float:
    return ImageStat.Stat(diff, mask).mean[0]


def outside(size: tuple[int, int], box: tuple[int, int, int, int], margin: int) -> Image.Image:
    """A mask of everything at least ``margin`` pixels away from ``box``."""
    mask = Image.new("L", size, 255)
    ImageDraw.Draw(mask).rectangle((box[0] - margin, box[1] - margin, box[2] + margin - 1, box[3] + margin - 1), 0)
    return mask


def digest(data: bytes | Path) -> str:
    return hashlib.sha256(data.read_bytes() if isinstance(data, Path) else data).hexdigest()


HAN = re.compile(r"[\u4e00-\u9fff]")
ENGLISH = re.compile(r"[A-Za-z]{4,}")


# --- photos -------------------------------------------------------------------------------------

def test_a_photo_copy_carries_a_visible_and_readable_mark():
    source = jpeg(smooth_picture())
    before = digest(source)

    copy = mark_image(source, MARK)
    plain = mark_image(source, None)  # the same copy without the mark: what the mark alone changes

    with Image.open(io.BytesIO(copy)) as opened:
        assert opened.format == "JPEG" and opened.size == SIZE
        opened.load()
    changed = difference(decode(copy), decode(plain))
    assert 0.05 < share_above(changed, 24) < 0.5, "the mark should cover part of the picture, not none or all"
    # Semi-transparent: even the strongest strokes leave the picture showing through them.
    assert share_above(changed, 160) < 0.001
    assert correlation(decode(copy), decode(plain), (0, 0, *SIZE)) > 0.9

    text = read_mark(copy)
    assert text == "调阅 DY-2026-0007\n张三 (370305001)\n2026-12-05 08:30 北京时间"
    description = Image.open(io.BytesIO(copy)).getexif()[0x010E]
    assert description.encode("latin-1").rstrip(b"\0").decode("utf-8") == text  # UTF-8 in EXIF too
    assert read_mark(plain) is None
    with pytest.raises(MarkingError):
        read_mark(b"not a JPEG")
    assert digest(source) == before


def test_the_input_buffer_is_never_changed():
    source = bytearray(jpeg(smooth_picture((200, 100))))
    before = bytes(source)
    mark_image(source, MARK, [Redaction(0, 0, 0.5, 0.5)], max_side=80)
    assert bytes(source) == before


def test_max_side_scales_down_and_never_up():
    source = jpeg(smooth_picture())
    assert decode(mark_image(source, MARK, max_side=200)).size == (200, 150)
    assert decode(mark_image(source, MARK, max_side=4000)).size == SIZE
    with pytest.raises(ValueError):
        mark_image(source, MARK, max_side=0)


def test_exif_orientation_is_applied_and_not_left_in_the_copy():
    stored = Image.new("RGB", (64, 32), "white")
    stored.paste((0, 0, 0), (0, 0, 32, 32))  # left half black as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90° clockwise: the stored left side is on top
    copy = mark_image(jpeg(stored, exif=exif.tobytes()), None)
    shown = decode(copy)
    assert shown.size == (32, 64)
    assert ImageStat.Stat(shown.crop((0, 0, 32, 28)).convert("L")).mean[0] < 30
    assert ImageStat.Stat(shown.crop((0, 36, 32, 64)).convert("L")).mean[0] > 225
    assert 0x0112 not in Image.open(io.BytesIO(copy)).getexif()  # a viewer must not turn it again


def test_transparent_parts_of_a_png_become_white_not_black():
    out = io.BytesIO()
    Image.new("RGBA", (40, 30), (0, 0, 0, 0)).save(out, "PNG")
    assert ImageStat.Stat(decode(mark_image(out.getvalue(), None)).convert("L")).mean[0] > 250


def test_mark_lines_are_in_beijing_time():
    assert MARK.lines() == ["调阅 DY-2026-0007", "张三 (370305001)", "2026-12-05 08:30 北京时间"]
    late = Mark("李四", datetime(2026, 12, 31, 20, 5, tzinfo=UTC), "DY-2026-0010")
    assert late.lines()[2] == "2027-01-01 04:05 北京时间"  # the next day, in the next year, in Beijing
    elsewhere = Mark("李四", datetime(2026, 12, 31, 21, 5, tzinfo=timezone(timedelta(hours=1))), "DY-2026-0010")
    assert elsewhere.lines()[2] == "2027-01-01 04:05 北京时间"


@pytest.mark.parametrize("viewer, at, grant", [
    ("张三", datetime(2026, 12, 5, 8, 30), "DY-2026-0007"),  # no zone: which 08:30?
    ("张三\n调阅 DY-2026-9999", datetime(2026, 12, 5, tzinfo=UTC), "DY-2026-0007"),  # forges a line
    ("张三", datetime(2026, 12, 5, tzinfo=UTC), "  "),
    ("", datetime(2026, 12, 5, tzinfo=UTC), "DY-2026-0007"),
])
def test_a_mark_must_say_who_when_and_which_grant(viewer, at, grant):
    with pytest.raises(ValueError) as raised:
        Mark(viewer, at, grant)
    assert HAN.search(str(raised.value)) and ENGLISH.search(str(raised.value))


# --- Chinese glyphs -----------------------------------------------------------------------------

def _noto_cjk_installed() -> bool:
    try:
        listed = subprocess.run(["fc-list"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        listed = ""
    return "Noto Sans CJK" in listed or Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc").is_file()


def test_chinese_is_drawn_with_glyphs_not_boxes():
    if not _noto_cjk_installed():
        skip_or_fail("Noto Sans CJK is not installed (Debian: fonts-noto-cjk); Chinese marks would be boxes")
    font = cjk_font(32)
    assert font.getname() == ("Noto Sans CJK SC", "Regular")  # SC: the shapes readers in China expect
    shapes = {char: bytes(font.getmask(char)) for char in ("调", "阅", "张", "\ue000")}  # U+E000: no glyph
    assert all(len(set(shape)) > 1 for shape in shapes.values())  # something is drawn
    assert len(set(shapes.values())) == 4, "different characters must not share one (missing-glyph) shape"
    # The watermark's own lines: two marks that differ in one Chinese character are drawn differently.
    other = Mark("李三 (370305001)", MARK.at, MARK.grant_number)
    assert watermark_overlay((320, 240), MARK).tobytes() != watermark_overlay((320, 240), other).tobytes()


def test_without_a_cjk_font_the_default_font_is_used_and_a_warning_logged(monkeypatch, caplog):
    monkeypatch.setattr(marking, "_font_candidates", lambda: iter(()))
    marking.cjk_font.cache_clear()
    marking._cjk_font_file.cache_clear()
    try:
        with caplog.at_level("WARNING", logger=marking.__name__):
            font = cjk_font(20)
        assert font.getbbox("DY-2026-0007")[2] > 0
        assert "fonts-noto-cjk" in caplog.text
    finally:
        marking.cjk_font.cache_clear()
        marking._cjk_font_file.cache_clear()


def test_without_fontconfig_the_simplified_chinese_face_of_the_collection_is_chosen(monkeypatch):
    if not Path(marking._KNOWN_CJK_FONTS[0]).is_file():
        skip_or_fail(f"{marking._KNOWN_CJK_FONTS[0]} is not installed (Debian: fonts-noto-cjk)")

    def no_fc_match(*args, **kwargs):
        raise FileNotFoundError("fc-match")

    monkeypatch.setattr(marking.subprocess, "run", no_fc_match)
    marking.cjk_font.cache_clear()
    marking._cjk_font_file.cache_clear()
    try:
        assert cjk_font(20).getname() == ("Noto Sans CJK SC", "Regular")  # not JP, the collection's first face
    finally:
        marking.cjk_font.cache_clear()
        marking._cjk_font_file.cache_clear()


# --- redaction ----------------------------------------------------------------------------------

def test_redaction_destroys_detail_inside_and_leaves_the_rest():
    picture = smooth_picture()
    box = RECT.box(SIZE)
    assert box == (160, 120, 320, 240)
    detailed = with_noise_in(picture, box)
    source = jpeg(detailed)

    redacted = decode(mark_image(source, None, [RECT]))
    assert variance(redacted, box) < variance(detailed, box) / 50
    assert abs(correlation(redacted, detailed, box)) < 0.1  # nothing of the detail is left to sharpen back
    away = outside(SIZE, box, margin=16)
    assert mean_under(difference(redacted, picture), away) < 2.5

    marked = decode(mark_image(source, MARK, [RECT]))  # the mark drawn over a redaction does not undo it
    assert abs(correlation(marked, detailed, box)) < 0.1


def test_a_rectangle_in_fractions_lands_on_the_same_place_of_a_scaled_copy():
    box = RECT.box(SIZE)
    source = jpeg(with_noise_in(smooth_picture(), box))
    scaled_box = RECT.box((320, 240))
    assert scaled_box == (80, 60, 160, 120)

    redacted = decode(mark_image(source, None, [RECT], max_side=320))
    unredacted = decode(mark_image(source, None, max_side=320))
    assert redacted.size == (320, 240)
    assert variance(redacted, scaled_box) < variance(unredacted, scaled_box) / 30
    assert mean_under(difference(redacted, unredacted), outside((320, 240), scaled_box, margin=8)) < 1


def test_a_rectangle_drawn_on_a_small_preview_is_rounded_outwards():
    assert Redaction(0.1, 0.1, 0.001, 0.001).box((100, 100)) == (10, 10, 11, 11)  # never empty
    assert Redaction(0.333, 0, 0.334, 1).box((1000, 10)) == (333, 0, 667, 10)
    assert Redaction(0.5, 0.5, 0.5, 0.5).box((101, 101)) == (50, 50, 101, 101)


def test_parse_accepts_what_a_page_sends():
    assert Redaction.parse({"x": 0, "y": 0.5, "w": 1, "h": 0.5}) == Redaction(0.0, 0.5, 1.0, 0.5)
    # 0.7 + 0.30000000000000004 > 1 only by the browser's float arithmetic
    assert Redaction.parse({"x": 0.7, "y": 0, "w": 0.30000000000000004, "h": 1}).w == pytest.approx(0.3)


@pytest.mark.parametrize("value", [
    [0.1, 0.1, 0.2, 0.2],
    None,
    {"x": 0.1, "y": 0.1, "w": 0.2},
    {"x": 0.1, "y": 0.1, "w": 0.2, "h": 0.2, "blur": 3},
    {"x": "0.1", "y": 0.1, "w": 0.2, "h": 0.2},
    {"x": 0.1, "y": None, "w": 0.2, "h": 0.2},
    {"x": True, "y": 0.1, "w": 0.2, "h": 0.2},
    {"x": float("nan"), "y": 0.1, "w": 0.2, "h": 0.2},
    {"x": 0.1, "y": 0.1, "w": float("inf"), "h": 0.2},
    {"x": -0.1, "y": 0.1, "w": 0.2, "h": 0.2},
    {"x": 0.1, "y": 1.5, "w": 0.2, "h": 0.2},
    {"x": 0.1, "y": 0.1, "w": 0, "h": 0.2},
    {"x": 0.1, "y": 0.1, "w": 0.2, "h": 0.0},
    {"x": 0.6, "y": 0.1, "w": 0.5, "h": 0.2},
    {"x": 0.1, "y": 0.9, "w": 0.2, "h": 0.2},
], ids=["list", "none", "missing-h", "extra-key", "string", "null", "bool", "nan", "inf", "negative",
        "above-one", "zero-width", "zero-height", "past-right", "past-bottom"])
def test_parse_rejects_bad_rectangles_in_both_languages(value):
    with pytest.raises(ValueError) as raised:
        Redaction.parse(value)
    message = str(raised.value)
    assert HAN.search(message) and ENGLISH.search(message), message


# --- refusing bad images ------------------------------------------------------------------------

@pytest.mark.parametrize("data", [b"", b"not an image at all", b"%PDF-1.7\n" + bytes(200),
                                  jpeg(smooth_picture())[:4000]],
                         ids=["empty", "text", "pdf", "truncated-jpeg"])
def test_mark_image_refuses_what_is_not_a_whole_image(data):
    with pytest.raises(MarkingError) as raised:
        mark_image(data, MARK)
    assert isinstance(raised.value, ValueError)
    assert HAN.search(str(raised.value)) and ENGLISH.search(str(raised.value))


@pytest.mark.parametrize("limit", [100_000, 200_000], ids=["above-twice-the-limit", "between-limit-and-twice"])
def test_mark_image_refuses_decompression_bombs(monkeypatch, limit):
    source = jpeg(smooth_picture())  # 307 200 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    with pytest.raises(MarkingError, match="decompression bomb"):
        mark_image(source, MARK)


# --- videos -------------------------------------------------------------------------------------

CLIP_SIZE = (160, 120)
CLIP_FPS = 10
CLIP_FRAMES = 20
CLIP_RECT = Redaction(0.5, 0.5, 0.25, 0.25)  # (80, 60)-(120, 90)


def detailed_clip(path: Path) -> Path:
    """2 s at 10 fps of a moving soft gradient with a patch of fresh noise in CLIP_RECT in every
    frame, encoded nearly losslessly so the noise survives (tests.support.videos draws ramps, which
    a blur leaves almost as they are)."""
    box = CLIP_RECT.box(CLIP_SIZE)
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=CLIP_FPS)
        stream.width, stream.height, stream.pix_fmt = *CLIP_SIZE, "yuv420p"
        stream.options = {"crf": "4", "preset": "ultrafast"}
        for index in range(CLIP_FRAMES):
            picture = with_noise_in(smooth_picture(CLIP_SIZE).rotate(index * 3), box, seed=index)
            frame = av.VideoFrame.from_image(picture).reformat(format="yuv420p")
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def frames_of(path: Path) -> list[Image.Image]:
    with av.open(str(path)) as container:
        return [frame.to_image() for frame in container.decode(video=0)]


def described(path: Path) -> dict:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        return {
            "codec": video.codec_context.name,
            "size": (video.codec_context.width, video.codec_context.height),
            "rate": video.average_rate,
            "duration": float(video.duration * video.time_base),
            "audio": audio.codec_context.name if audio else None,
            "audio_duration": float(audio.duration * audio.time_base) if audio else None,
            "comment": container.metadata.get("comment"),
        }


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return detailed_clip(tmp_path_factory.mktemp("marking") / "detailed.mp4")


def test_a_video_copy_is_marked_and_redacted_in_every_frame(clip, tmp_path):
    before = digest(clip)
    copy = tmp_path / "copy.mp4"
    mark_video(clip, copy, MARK, [CLIP_RECT])

    source_info, copy_info = described(clip), described(copy)
    assert copy_info["codec"] in ("h264", "mpeg4")
    assert copy_info["size"] == CLIP_SIZE and copy_info["rate"] == CLIP_FPS
    assert copy_info["duration"] == pytest.approx(source_info["duration"], abs=1 / CLIP_FPS)
    assert "DY-2026-0007" in copy_info["comment"] and "张三" in copy_info["comment"]

    sources, copies = frames_of(clip), frames_of(copy)
    assert abs(len(copies) - len(sources)) <= 1 and len(sources) == CLIP_FRAMES

    box = CLIP_RECT.box(CLIP_SIZE)
    alpha = watermark_overlay(CLIP_SIZE, MARK).getchannel("A")
    on_text = alpha.point(lambda a: 255 if a > 60 else 0)
    clear = ImageChops.multiply(alpha.point(lambda a: 255 if a == 0 else 0).filter(ImageFilter.MinFilter(5)),
                                outside(CLIP_SIZE, box, margin=4))
    assert share_above(on_text, 0) > 0.03 and share_above(clear, 0) > 0.2
    for number, (source, copied) in enumerate(zip(sources, copies, strict=False)):
        changed = difference(copied.convert("RGB"), source.convert("RGB"))
        assert mean_under(changed, on_text) > 25, f"frame {number}: no watermark"
        assert mean_under(changed, clear) < 8, f"frame {number}: changed away from the watermark"
        assert abs(correlation(copied, source, box)) < 0.15, f"frame {number}: redacted detail still there"
        # The watermark crosses the rectangle, so some variance is its letters, not the source's detail.
        assert variance(copied, box) < variance(source, box) / 10, f"frame {number}: not blurred"
    assert digest(clip) == before


def test_a_video_copy_keeps_its_sound_and_can_be_smaller(tmp_path):
    source = make_video(tmp_path / "camera.mp4", 2.0, size=CLIP_SIZE, fps=CLIP_FPS, audio=True)
    copy = tmp_path / "copy.mp4"
    mark_video(source, copy, MARK, [CLIP_RECT], max_height=61)

    info = described(copy)
    assert info["size"] == (80, 60)  # 61 rounded down to even, width to match
    assert info["audio"] == "aac"
    assert info["audio_duration"] == pytest.approx(described(source)["audio_duration"], abs=0.1)
    assert info["duration"] == pytest.approx(2.0, abs=1 / CLIP_FPS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["camera.mp4", "copy.mp4"]  # no temporary left


def test_a_copy_at_a_broadcast_frame_rate_keeps_it(tmp_path):
    source = tmp_path / "ntsc.mp4"
    with av.open(str(source), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(30000, 1001))
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for index in range(15):
            frame = av.VideoFrame.from_image(smooth_picture((64, 48)).rotate(index)).reformat(format="yuv420p")
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    copy = tmp_path / "copy.mp4"
    mark_video(source, copy, None, [Redaction(0, 0, 0.5, 0.5)])
    assert described(copy)["rate"] == Fraction(30000, 1001)
    assert len(frames_of(copy)) == 15


@pytest.mark.parametrize("make_bad", [
    lambda folder: (folder / "text.mp4").write_bytes(b"this is not a video" * 100),
    lambda folder: truncate(make_video(folder / "cut.mp4", 1.0), 0.3),  # the camera lost power: no index
    lambda folder: (folder / "empty.mp4").write_bytes(b""),
], ids=["text", "cut-without-index", "empty"])
def test_an_undecodable_video_raises_and_leaves_nothing_behind(tmp_path, make_bad):
    bad = tmp_path / "bad"
    bad.mkdir()
    make_bad(bad)
    (source,) = bad.iterdir()
    copies = tmp_path / "copies"
    copies.mkdir()
    with pytest.raises(MarkingError) as raised:
        mark_video(source, copies / "copy.mp4", MARK, [CLIP_RECT])
    assert HAN.search(str(raised.value)) and ENGLISH.search(str(raised.value))
    assert list(copies.iterdir()) == []


def test_a_copy_is_never_written_over_its_original(clip, tmp_path):
    original = tmp_path / "original.mp4"
    original.write_bytes(clip.read_bytes())
    before = digest(original)
    with pytest.raises(ValueError, match="original"):
        mark_video(original, original, MARK)
    assert digest(original) == before
