"""What a media file is, from its first bytes only — never from its name or a declared type.

``sniff(head)`` takes the first bytes of a file (give at least ``SNIFF_BYTES`` when the file has
them) and answers a :class:`Sniffed` (kind, MIME type, canonical extension) for the photo, video and
audio formats phones produce — GIF among the images, as phones export screen recordings and
animated captures in it — or raises :class:`UnsupportedMedia` with a stable ``code`` and a message
in Chinese and English for everything else: empty files, markup a browser would render (HTML, SVG),
scripts, and bytes of no supported type.
"""
from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

SNIFF_BYTES = 64 * 1024
"""How many leading bytes callers should pass (EBML and MP3 checks look past the first few)."""


@dataclass(frozen=True, slots=True)
class Sniffed:
    kind: str   # "image" | "video" | "audio"
    mime: str
    ext: str    # canonical extension for storage and downloads, e.g. ".jpg"


MESSAGES: dict[str, tuple[str, str]] = {
    "empty": ("文件为空（0 字节），不能作为原件保存。",
              "The file is empty (0 bytes) and cannot be stored as an original."),
    "html": ("文件内容是网页（HTML），不是照片、视频或录音，已拒收。",
             "The content is a web page (HTML), not a photo, video or audio recording; refused."),
    "svg": ("文件内容是 SVG 矢量图（可含脚本），不是相机拍摄的照片，已拒收。",
            "The content is an SVG drawing (which can carry scripts), not a camera photo; refused."),
    "script": ("文件内容是脚本，不是照片、视频或录音，已拒收。",
               "The content is a script, not a photo, video or audio recording; refused."),
    "unknown_type": ("无法识别的文件类型：仅接收 JPEG、PNG、WebP、GIF、HEIC 图片，MP4、MOV、3GP、WebM 视频和"
                     "M4A、AAC、MP3、AMR、WAV、OGG、WebM 录音。",
                     "Unrecognised file type: only JPEG, PNG, WebP, GIF and HEIC images, MP4, MOV, 3GP "
                     "and WebM video, and M4A, AAC, MP3, AMR, WAV, OGG and WebM audio are accepted."),
}


class UnsupportedMedia(ValueError):
    """The bytes are not of a supported media type. ``code`` is one of :data:`MESSAGES`."""

    def __init__(self, code: str, message_en: str | None = None, message_zh: str | None = None):
        zh, en = MESSAGES.get(code, MESSAGES["unknown_type"])
        self.code = code
        self.message_zh = message_zh or zh
        self.message_en = message_en or en
        super().__init__(f"{code}: {self.message_en} / {self.message_zh}")

    @property
    def message(self) -> str:
        return self.message_en


# --- ISO base media file format (ftyp brands) ---------------------------------------------------

_HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"}
_HEIF_BRANDS = {b"mif1", b"msf1", b"mif2"}
_M4A_BRANDS = {b"M4A ", b"M4B ", b"M4P "}
_QT_BRANDS = {b"qt  "}
_MP4_BRANDS = {b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"iso8", b"mp41", b"mp42",
               b"mp71", b"avc1", b"dash", b"MSNV", b"M4V ", b"M4VH", b"M4VP", b"mmp4", b"f4v ",
               b"XAVC", b"NDAS"}
_QT_TOP_BOXES = {b"moov", b"mdat", b"wide", b"pnot"}


def _ftyp(head: bytes) -> Sniffed | None:
    if len(head) < 12 or head[4:8] != b"ftyp":
        return None
    size = int.from_bytes(head[0:4], "big")
    end = min(len(head), size if 16 <= size <= 4096 else 16 + 4 * 64)
    major = head[8:12]
    compatible = [head[i:i + 4] for i in range(16, end - 3, 4)]
    brands = [major, *compatible]

    def judge(brand: bytes) -> Sniffed | None:
        if brand in _HEIC_BRANDS:
            return Sniffed("image", "image/heic", ".heic")
        if brand in _M4A_BRANDS:
            return Sniffed("audio", "audio/mp4", ".m4a")
        if brand in _QT_BRANDS:
            return Sniffed("video", "video/quicktime", ".mov")
        if brand.startswith(b"3gp") or brand.startswith(b"3ge") or brand.startswith(b"3gs"):
            return Sniffed("video", "video/3gpp", ".3gp")
        if brand.startswith(b"3g2"):
            return Sniffed("video", "video/3gpp2", ".3g2")
        if brand in _MP4_BRANDS:
            return Sniffed("video", "video/mp4", ".mp4")
        return None

    # A HEIF container whose brands also name HEVC is HEIC (iPhones write major "heic"; some
    # Android phones write major "mif1" with "heic" among the compatible brands).
    if major in _HEIF_BRANDS:
        if any(b in _HEIC_BRANDS for b in compatible):
            return Sniffed("image", "image/heic", ".heic")
        if not any(b in (b"avif", b"avis") for b in compatible):
            return Sniffed("image", "image/heif", ".heif")
        return None
    for brand in brands:
        found = judge(brand)
        if found:
            return found
    return None


# --- MPEG audio (MP3) and ADTS (AAC) ----------------------------------------------------------

_MP3_BITRATES = {  # (version_is_mpeg1, layer) -> kbit/s by index
    (True, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 3): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MP3_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _adts_frame(data: bytes, i: int) -> int | None:
    """Length of the ADTS frame at ``i`` or None."""
    if i + 7 > len(data) or data[i] != 0xFF or data[i + 1] & 0xF6 != 0xF0:
        return None
    if (data[i + 2] >> 2) & 0x0F > 12:  # sampling frequency index
        return None
    length = ((data[i + 3] & 0x03) << 11) | (data[i + 4] << 3) | (data[i + 5] >> 5)
    return length if length >= 7 else None


def _mp3_frame(data: bytes, i: int) -> int | None:
    """Length of the MPEG-1/2/2.5 Layer III frame at ``i`` or None."""
    if i + 4 > len(data) or data[i] != 0xFF or data[i + 1] & 0xE0 != 0xE0:
        return None
    version = (data[i + 1] >> 3) & 0x03
    layer = (data[i + 1] >> 1) & 0x03
    if version == 1 or layer != 1:  # reserved version; only Layer III (phones, recorders)
        return None
    bitrate_index = data[i + 2] >> 4
    rate_index = (data[i + 2] >> 2) & 0x03
    if bitrate_index in (0, 15) or rate_index == 3:
        return None
    bitrate = _MP3_BITRATES[(version == 3, 3)][bitrate_index] * 1000
    rate = _MP3_RATES[version][rate_index]
    padding = (data[i + 2] >> 1) & 0x01
    return (144 if version == 3 else 72) * bitrate // rate + padding


def _frames(data: bytes, i: int, frame) -> bool:
    """A valid frame at ``i`` followed by another one (when the head is long enough to tell)."""
    length = frame(data, i)
    if length is None:
        return False
    if i + length + 4 > len(data):
        return True
    return frame(data, i + length) is not None


def _mpeg_audio(head: bytes) -> Sniffed | None:
    start = 0
    if head.startswith(b"ID3") and len(head) >= 10:
        size = 0
        for b in head[6:10]:
            size = (size << 7) | (b & 0x7F)
        start = 10 + size + (10 if head[5] & 0x10 else 0)
        if start >= len(head):  # long tag (cover art): ID3 only prefixes MP3 in practice
            return Sniffed("audio", "audio/mpeg", ".mp3")
        while start < len(head) and head[start] == 0:  # padding after the tag
            start += 1
        if _frames(head, start, _adts_frame):
            return Sniffed("audio", "audio/aac", ".aac")
        return Sniffed("audio", "audio/mpeg", ".mp3")
    if _frames(head, start, _adts_frame):
        return Sniffed("audio", "audio/aac", ".aac")
    if _frames(head, start, _mp3_frame):
        return Sniffed("audio", "audio/mpeg", ".mp3")
    return None


# --- EBML (WebM) ------------------------------------------------------------------------------

def _ebml(head: bytes) -> Sniffed | None:
    if not head.startswith(b"\x1a\x45\xdf\xa3"):
        return None
    window = head[:SNIFF_BYTES]
    doctype = window.find(b"\x42\x82")
    if doctype < 0 or b"webm" not in window[doctype:doctype + 16]:
        return None
    # Codec ids (CodecID element 0x86 followed by a size byte) tell video from audio-only
    # (MediaRecorder writes A_OPUS alone for an audio recording).
    if re.search(rb"\x86[\x80-\xff]V_", window):
        return Sniffed("video", "video/webm", ".webm")
    if re.search(rb"\x86[\x80-\xff]A_", window):
        return Sniffed("audio", "audio/webm", ".webm")
    return Sniffed("video", "video/webm", ".webm")


# --- text that must be refused ----------------------------------------------------------------

_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF32_LE, "utf-32-le"),
         (codecs.BOM_UTF32_BE, "utf-32-be"), (codecs.BOM_UTF16_LE, "utf-16-le"),
         (codecs.BOM_UTF16_BE, "utf-16-be"))
_HTML_STARTS = ("<!doctype html", "<html", "<head", "<body", "<script", "<iframe", "<meta",
                "<title", "<style", "<div", "<a ", "<img", "<form", "<!--", "<p>", "<br",
                "<table", "<object", "<embed", "<h1", "<link", "<base")


def _text(head: bytes) -> str:
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return head[len(bom):].decode(encoding, "ignore")
    if len(head) >= 4 and head[1] == 0 and head[3] == 0 and head[0] and head[2]:
        return head.decode("utf-16-le", "ignore")  # UTF-16 without a BOM
    if len(head) >= 4 and head[0] == 0 and head[2] == 0 and head[1] and head[3]:
        return head.decode("utf-16-be", "ignore")
    return head.decode("latin-1")


def _refuse_text(head: bytes) -> None:
    text = _text(head[:SNIFF_BYTES]).lstrip(" \t\r\n\f\v\x00\ufeff").lower()
    if text.startswith("#!") or text.startswith("<?php"):
        raise UnsupportedMedia("script")
    if text.startswith("<svg") or (text.startswith("<") and "<svg" in text):
        raise UnsupportedMedia("svg")
    if text.startswith(_HTML_STARTS) or text.startswith("<?xml") or "<html" in text \
            or "<script" in text or "<!doctype html" in text:
        raise UnsupportedMedia("html")
    if "<svg" in text[:1024]:
        raise UnsupportedMedia("svg")


def sniff(head: bytes) -> Sniffed:
    """The media type of a file from its first bytes (``SNIFF_BYTES`` of them when available)."""
    if not head:
        raise UnsupportedMedia("empty")
    if head.startswith(b"\xff\xd8\xff"):
        return Sniffed("image", "image/jpeg", ".jpg")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Sniffed("image", "image/png", ".png")
    if head.startswith((b"GIF87a", b"GIF89a")):  # screen recordings and animated captures
        return Sniffed("image", "image/gif", ".gif")
    if head.startswith(b"RIFF") and len(head) >= 12:
        if head[8:12] == b"WEBP":
            return Sniffed("image", "image/webp", ".webp")
        if head[8:12] == b"WAVE":
            return Sniffed("audio", "audio/wav", ".wav")
    if head.startswith(b"#!AMR-WB\n"):
        return Sniffed("audio", "audio/amr-wb", ".awb")
    if head.startswith(b"#!AMR\n"):
        return Sniffed("audio", "audio/amr", ".amr")
    if head.startswith(b"OggS"):
        if b"\x80theora" in head[:4096]:
            return Sniffed("video", "video/ogg", ".ogv")
        return Sniffed("audio", "audio/ogg", ".ogg")
    for detect in (_ftyp, _ebml):
        found = detect(head)
        if found:
            return found
    if len(head) >= 8 and head[4:8] in _QT_TOP_BOXES and int.from_bytes(head[:4], "big") >= 8:
        # Old QuickTime files start with a moov/mdat/wide atom and carry no ftyp.
        return Sniffed("video", "video/quicktime", ".mov")
    found = _mpeg_audio(head)
    if found:
        return found
    _refuse_text(head)
    raise UnsupportedMedia("unknown_type")
