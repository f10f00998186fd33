"""The media type comes from the bytes: real headers of every supported format, and the content
the server refuses (empty, HTML, SVG, scripts, anything unknown) with messages in both languages."""
from __future__ import annotations

import io
import random
import struct
import wave

import pytest
from PIL import Image

from fieldapp.media.sniff import MESSAGES, SNIFF_BYTES, Sniffed, UnsupportedMedia, sniff


def _pillow(fmt: str, **params) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(out, fmt, **params)
    return out.getvalue()


def _ftyp(major: bytes, *compatible: bytes, then: bytes = b"\x00\x00\x00\x08free") -> bytes:
    body = major + b"\x00\x00\x02\x00" + b"".join(compatible)
    return struct.pack(">I", 8 + len(body)) + b"ftyp" + body + then


def _id3(frames: bytes) -> bytes:
    tag = b"TIT2" + struct.pack(">I", 6) + b"\x00\x00" + b"\x03memo\x00"
    size = len(tag)
    syncsafe = bytes([(size >> 21) & 0x7F, (size >> 14) & 0x7F, (size >> 7) & 0x7F, size & 0x7F])
    return b"ID3\x04\x00\x00" + syncsafe + tag + frames


def _mp3_frames(count: int = 3) -> bytes:
    header = b"\xff\xfb\x90\x00"  # MPEG-1 Layer III, 128 kbit/s, 44.1 kHz: 417-byte frames
    return (header + b"\x00" * 413) * count


def _adts_frames(count: int = 3, length: int = 200) -> bytes:
    header = bytes([0xFF, 0xF1, 0x50, 0x80 | (length >> 11), (length >> 3) & 0xFF,
                    ((length & 7) << 5) | 0x1F, 0xFC])
    return (header + b"\x21" * (length - 7)) * count


def _wav() -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x01" * 800)
    return out.getvalue()


def _ebml(codec: bytes) -> bytes:
    header = b"\x42\x86\x81\x01" + b"\x42\x82\x84webm" + b"\x42\x87\x81\x04"
    tracks = b"\x16\x54\xae\x6b\x8f\xae\x8d\xd7\x81\x01\x86" + bytes([0x80 | len(codec)]) + codec
    return b"\x1a\x45\xdf\xa3" + bytes([0x80 | len(header)]) + header + \
        b"\x18\x53\x80\x67\x01\xff\xff\xff\xff\xff\xff\xff" + tracks


ACCEPTED = [
    ("jpeg", _pillow("JPEG"), "image", "image/jpeg"),
    ("png", _pillow("PNG"), "image", "image/png"),
    ("webp", _pillow("WEBP"), "image", "image/webp"),
    ("gif89a", _pillow("GIF"), "image", "image/gif"),
    ("gif87a", b"GIF87a" + _pillow("GIF")[6:], "image", "image/gif"),
    ("heic iphone", _ftyp(b"heic", b"mif1", b"heic"), "image", "image/heic"),
    ("heic android", _ftyp(b"mif1", b"mif1", b"heic"), "image", "image/heic"),
    ("heif", _ftyp(b"mif1", b"mif1", b"miaf"), "image", "image/heif"),
    ("mp4", _ftyp(b"isom", b"isom", b"iso2", b"avc1", b"mp41"), "video", "video/mp4"),
    ("mp4 mp42", _ftyp(b"mp42", b"isom", b"mp42"), "video", "video/mp4"),
    ("mov", _ftyp(b"qt  ", b"qt  "), "video", "video/quicktime"),
    ("mov without ftyp", b"\x00\x00\x00\x08wide\x00\x01\x00\x00mdat" + b"\x00" * 64,
     "video", "video/quicktime"),
    ("3gp", _ftyp(b"3gp4", b"isom", b"3gp4"), "video", "video/3gpp"),
    ("m4a", _ftyp(b"M4A ", b"M4A ", b"mp42", b"isom"), "audio", "audio/mp4"),
    ("mp3 with id3", _id3(_mp3_frames()), "audio", "audio/mpeg"),
    ("mp3 frames", _mp3_frames(), "audio", "audio/mpeg"),
    ("aac adts", _adts_frames(), "audio", "audio/aac"),
    ("amr", b"#!AMR\n" + b"\x3c" + b"\x00" * 31, "audio", "audio/amr"),
    ("amr-wb", b"#!AMR-WB\n" + b"\x04" * 40, "audio", "audio/amr-wb"),
    ("wav", _wav(), "audio", "audio/wav"),
    ("ogg", b"OggS\x00\x02" + b"\x00" * 22 + b"\x01\x1e\x01vorbis" + b"\x00" * 30,
     "audio", "audio/ogg"),
    ("webm video", _ebml(b"V_VP8"), "video", "video/webm"),
    ("webm audio", _ebml(b"A_OPUS"), "audio", "audio/webm"),
]


@pytest.mark.parametrize(("head", "kind", "mime"), [c[1:] for c in ACCEPTED],
                         ids=[c[0] for c in ACCEPTED])
def test_supported_media_is_recognised_from_its_bytes(head, kind, mime):
    found = sniff(head)
    assert isinstance(found, Sniffed)
    assert (found.kind, found.mime) == (kind, mime)
    assert found.ext.startswith(".")


def test_an_animated_gif_is_an_image():
    """A phone's screen recording or an animated capture saved as GIF is evidence like any image."""
    frames = [Image.new("RGB", (64, 48), (40 * i, 0, 0)) for i in range(4)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert sniff(out.getvalue()[:16]) == Sniffed("image", "image/gif", ".gif")


def test_the_refusal_of_unknown_bytes_names_gif_among_the_accepted_types():
    zh, en = MESSAGES["unknown_type"]
    assert "GIF" in zh and "GIF" in en


def test_only_the_head_is_needed():
    jpeg = _pillow("JPEG")
    assert sniff(jpeg[:16]).mime == "image/jpeg"
    assert SNIFF_BYTES >= 64 * 1024


random_bytes = random.Random(20250601).randbytes(4096)
REFUSED = [
    ("empty", b"", "empty"),
    ("html", b"<!DOCTYPE html><html><body>hi</body></html>", "html"),
    ("html bom and whitespace", b"\xef\xbb\xbf \r\n\t <!doctype HTML>\n<html>", "html"),
    ("html utf-16 bom", "\ufeff\n<html><script>alert(1)</script>".encode("utf-16-le"), "html"),
    ("html fragment", b"  <html lang=zh>", "html"),
    ("script tag", b"\n<script>fetch('/api')</script>", "html"),
    ("html comment first", b"<!-- x --><iframe src=x>", "html"),
    ("svg with script", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
     "svg"),
    ("xml then svg", b'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE svg PUBLIC "-//W3C//DTD '
     b'SVG 1.1//EN" "x.dtd">\n<svg width="10"/>', "svg"),
    ("other xml", b'<?xml version="1.0"?><note>x</note>', "html"),
    ("shell script", b"#!/bin/sh\nrm -rf /\n", "script"),
    ("env script", b"\xef\xbb\xbf#!/usr/bin/env python3\n", "script"),
    ("php", b"<?php system($_GET['c']); ?>", "script"),
    ("random bytes", random_bytes, "unknown_type"),
    ("zip", b"PK\x03\x04" + b"\x00" * 60, "unknown_type"),
    ("pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "unknown_type"),
    ("plain text", "现场笔录".encode(), "unknown_type"),
    ("avif", _ftyp(b"avif", b"mif1", b"avif"), "unknown_type"),
    ("riff avi", b"RIFF\x00\x10\x00\x00AVI LIST" + b"\x00" * 32, "unknown_type"),
]


@pytest.mark.parametrize(("head", "code"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_refused_content_has_a_code_and_messages_in_both_languages(head, code):
    with pytest.raises(UnsupportedMedia) as caught:
        sniff(head)
    exc = caught.value
    assert exc.code == code
    assert (exc.message_zh, exc.message_en) == MESSAGES[code]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in exc.message_zh)
    assert exc.message_en.isascii() and exc.message_en
    assert code in str(exc)


def test_magic_wins_over_text_and_never_looks_at_a_name():
    # Markup after a real JPEG header is a JPEG as far as the server is concerned (served as
    # image/jpeg it cannot run); the same markup on its own is refused.
    html = b"<html><script>alert(1)</script></html>"
    assert sniff(b"\xff\xd8\xff\xe0" + html).mime == "image/jpeg"
    with pytest.raises(UnsupportedMedia):
        sniff(html)
    assert "name" not in sniff.__code__.co_varnames
