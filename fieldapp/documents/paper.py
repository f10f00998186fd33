"""现场照片: the on-site photo sheet of a case, printed to A4 with a verification QR code on every page.

The sheet is the paper form of a case's photos, as the national 现场照片（证据照片）sheets lay them
out: a header (bureau, 现场照片, case number, party), two photos a page, each in a framed box with
its number and a caption table (拍摄时间, 拍摄地点, 拍摄人, 证明内容), and at the foot of every page
the lines where the party and the officers sign and date it. Every page also carries, in its top
margin, the QR code of the sheet's verification address with the address and the verification code
printed beside it, and "第 N 页 共 M 页", so a single page taken out of the file still says what it
belongs to and where to check it.

Like :mod:`fieldapp.documents.pdf` (whose fonts, Jinja environment and filters it uses), nothing
here touches a database, the storage or a request: the facts arrive in the dataclasses below.

Speed (a case may hold hundreds of photos): each photo is given to WeasyPrint as the bytes it
arrives in, under a ``photo:<n>`` address only this module's fetcher answers (no network, no
files, no data: URLs to parse), and is drawn into a box of fixed size, so layout never waits on an
image's pixels. A JPEG without an EXIF orientation to apply goes into the PDF as it is (DCTDecode,
no re-encoding); ``image-orientation: none`` keeps WeasyPrint from decoding it to apply a rotation
of 1. The caption tables have a fixed layout.
"""
from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

from fieldapp.documents.pdf import BUREAU, MONO_FAMILY, _environment, _families, _warn_missing_fonts
from .weasy import weasyprint as _weasy

PHOTOS_PER_PAGE = 2
UNRECORDED = "未记录"
"""Printed where a fact is missing (a photo without a capture time, say), so a blank is never
mistaken for a field someone forgot to fill in."""

BESIDE_CHARS = 120
BESIDE_LINE = 13
"""A description of up to BESIDE_CHARS characters (a line break counting as BESIDE_LINE) is printed
in the caption table beside the photo; a longer one under it, across the box."""

_EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class SheetPhoto:
    """One photo of the sheet. ``image`` is the server's preview (JPEG or PNG, about 1280 px);
    ``taken_at`` is an aware datetime or an ISO 8601 string (naive means UTC), printed as Beijing
    time, or None when the photo has no capture time; ``place`` and ``officer`` are printed as
    given; ``description`` is what the photo shows (证明内容)."""
    image: bytes
    number: int
    taken_at: datetime | str | None
    place: str
    officer: str
    description: str


@dataclass(frozen=True)
class PhotoSheetDoc:
    """现场照片 of one case. ``verify_url`` is what the QR code on every page holds (and is printed
    under it); ``code`` is the verification code printed beside it."""
    case_number: str | None
    party: str
    case_id: str
    photos: Sequence[SheetPhoto]
    verify_url: str
    code: str
    bureau: str = BUREAU


def photo_sheet_pdf(doc: PhotoSheetDoc) -> bytes:
    """现场照片 as PDF bytes."""
    weasyprint = _weasy()  # loads Pango (and puts back what its import changes): only when a document is made

    _warn_missing_fonts()
    images: dict[str, tuple[bytes, str]] = {}
    photos = []
    for index, photo in enumerate(doc.photos):
        url = f"photo:{index}"
        images[url] = (photo.image, _mime(photo.image))
        photos.append((photo, url, _upright(photo.image), _fits_beside(photo.description)))
    pages = [photos[i:i + PHOTOS_PER_PAGE] for i in range(0, len(photos), PHOTOS_PER_PAGE)] or [[]]
    html = _environment().get_template("documents/photo_sheet.html").render(
        doc=doc, pages=pages, qr=qr_svg(doc.verify_url), title="现场照片",
        created=datetime.now(UTC).replace(microsecond=0),
        unrecorded=UNRECORDED)
    return weasyprint.HTML(string=html, url_fetcher=_fetcher(images)).write_pdf(
        stylesheets=[weasyprint.CSS(string=_stylesheet())])


def qr_svg(data: str) -> str:
    """The QR code of ``data`` as an inline SVG element (a viewBox and no size: CSS sizes it), with
    the four-module quiet zone the standard asks for."""
    import segno

    return segno.make(data, error="m", micro=False).svg_inline(omitsize=True, border=4, svgclass="qr-code",
                                                               lineclass=None)


def _fits_beside(text: str) -> bool:
    """Whether a description fits the caption column beside the photo (about 13 characters a line,
    ten lines); a longer one is printed across the box's width under the photo, and the box may
    then run onto the next page."""
    return len(text) + BESIDE_LINE * text.count("\n") <= BESIDE_CHARS


# --- images ---------------------------------------------------------------------------------------

def _mime(data: bytes) -> str:
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    return "application/octet-stream"  # WeasyPrint still tries Pillow on it


def _upright(data: bytes) -> bool:
    """Whether the image needs no EXIF rotation, so WeasyPrint may skip decoding it to apply one.
    Reads only the header."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            if "exif" not in im.info:
                return True
            return im.getexif().get(_EXIF_ORIENTATION, 1) in (0, 1)
    except Exception:  # noqa: BLE001 - a picture Pillow cannot read is WeasyPrint's to report
        return True


def _fetcher(images: dict[str, tuple[bytes, str]]):
    """A fetcher that answers the sheet's ``photo:<n>`` addresses from memory and refuses every other
    URL (as :func:`fieldapp.documents.pdf.url_fetcher` does), so no text on the sheet can make the
    renderer open a file or reach the network."""
    weasyprint = _weasy()

    base = getattr(weasyprint.urls, "URLFetcher", None)
    if base is None:  # WeasyPrint before 70: a plain function returning a dict
        def fetch(url: str, *args, **kwargs):
            if url not in images:
                raise ValueError(f"the photo sheet loads no resources but its photos ({url[:80]})")
            data, mime = images[url]
            return {"string": data, "mime_type": mime, "redirected_url": url}
        return fetch
    return _fetcher_class(base)(images)


@cache
def _fetcher_class(base: type) -> type:
    weasyprint = _weasy()

    class PhotoFetcher(base):
        def __init__(self, images: dict[str, tuple[bytes, str]]):
            super().__init__(allowed_protocols=())
            self._images = images

        def fetch(self, url, headers=None):
            if url not in self._images:
                raise ValueError(f"the photo sheet loads no resources but its photos ({url[:80]})")
            data, mime = self._images[url]
            return weasyprint.urls.URLFetcherResponse(url, data, {"Content-Type": mime})

    return PhotoFetcher


# --- style ----------------------------------------------------------------------------------------

@cache
def _stylesheet() -> str:
    return STYLESHEET.replace("FAMILIES", _families()).replace("MONO", _families(MONO_FAMILY))


STYLESHEET = """
@page {
  size: A4 portrait;
  margin: 36mm 18mm 24mm 22mm;
  @top-left { content: element(head); width: 104mm; vertical-align: bottom; padding-bottom: 3mm; }
  @top-right { content: element(qr); width: 66mm; vertical-align: bottom; padding-bottom: 2mm; }
  @bottom-center { content: element(sign); width: 170mm; vertical-align: top; padding-top: 3mm; }
}
html { font-family: FAMILIES; font-size: 10.5pt; line-height: 1.5; color: #000; }
body { margin: 0; }
h1 { font-size: 18pt; text-align: center; letter-spacing: 0.5em; margin: 0 0 2mm; }
p { margin: 0; }
.bureau { text-align: center; font-size: 12pt; margin: 0 0 1mm; }
.code { font-family: MONO; font-size: 8pt; overflow-wrap: anywhere; }

.head { position: running(head); font-size: 8.5pt; line-height: 1.45; color: #222; }
.head .form { font-size: 11pt; font-weight: bold; letter-spacing: 0.2em; color: #000; }

.qr { position: running(qr); font-size: 7pt; line-height: 1.3; }
.qr table { width: 100%; border-collapse: collapse; table-layout: fixed; }
.qr td { padding: 0; border: none; vertical-align: bottom; text-align: left; }
.qr td.symbol { width: 24mm; }
.qr svg { display: block; width: 24mm; height: 24mm; }
.qr .label { font-size: 7.5pt; }
.qr .url { font-family: MONO; font-size: 6.5pt; overflow-wrap: anywhere; word-break: break-all; margin-top: 0.8mm; }

.sign { position: running(sign); font-size: 10pt; line-height: 2; white-space: nowrap; }
.sign .line { display: inline-block; width: 28mm; border-bottom: 0.5pt solid #000; }
.sign .date { display: inline-block; width: 10mm; border-bottom: 0.5pt solid #000; }
.sign .year { width: 13mm; }
.sign .pages::before { content: "第 " counter(page) " 页 共 " counter(pages) " 页"; }
.sign .pages { text-align: center; font-size: 9pt; line-height: 1.5; margin-top: 1mm; }

table.facts { width: 100%; border-collapse: collapse; table-layout: fixed; margin: 1mm 0 3mm; font-size: 10pt; }
table.facts th, table.facts td { border: 0.5pt solid #000; padding: 0.8mm 1.5mm; text-align: left;
                                 vertical-align: top; overflow-wrap: anywhere; }
table.facts th { width: 18mm; font-weight: bold; }

.page { break-before: page; }
.page.first { break-before: auto; }
.photo { border: 0.8pt solid #000; margin: 0 0 5mm; break-inside: avoid; }
.photo .number { border-bottom: 0.5pt solid #000; padding: 0.6mm 2mm; font-weight: bold; font-size: 10pt;
                 break-after: avoid; }
.photo table.layout { width: 100%; border-collapse: collapse; table-layout: fixed; }
.photo table.layout > tbody > tr > td { padding: 2mm; vertical-align: top; border: none; }
.photo.long { break-inside: auto; }
.photo tr.main { break-inside: avoid; }
.photo table.layout > tbody > tr > td.below { padding-top: 0; }
.photo td.picture { width: 104mm; }
.photo .frame { width: 104mm; height: 78mm; border: 0.5pt solid #888; background: #f4f4f4; }
.photo img { display: block; width: 104mm; height: 78mm; object-fit: contain; }
.photo img.upright { image-orientation: none; }
table.caption { width: 100%; border-collapse: collapse; table-layout: fixed; font-size: 9pt; line-height: 1.4; }
table.caption th, table.caption td { border: 0.5pt solid #000; padding: 0.8mm 1.2mm; vertical-align: top;
                                     text-align: left; overflow-wrap: anywhere; }
table.caption th { width: 16mm; font-weight: bold; }
td.below table.caption th { width: 17.2mm; }
table.caption td.text { white-space: pre-wrap; }
.empty { color: #444; }
"""
