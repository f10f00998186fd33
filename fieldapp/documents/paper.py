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
from datetime import datetime

from fieldapp.documents.pdf import BUREAU
from .page_frame import Images, qr_svg, render_pdf

__all__ = ["PhotoSheetDoc", "SheetPhoto", "photo_sheet_pdf", "qr_svg"]

PHOTOS_PER_PAGE = 2

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
    images = Images()
    photos = [(photo, images.add(photo.image), _upright(photo.image), _fits_beside(photo.description))
              for photo in doc.photos]
    pages = [photos[i:i + PHOTOS_PER_PAGE] for i in range(0, len(photos), PHOTOS_PER_PAGE)] or [[]]
    return render_pdf("documents/photo_sheet.html", STYLESHEET, verify_url=doc.verify_url, images=images,
                      doc=doc, pages=pages, title="现场照片")


def _fits_beside(text: str) -> bool:
    """Whether a description fits the caption column beside the photo (about 13 characters a line,
    ten lines); a longer one is printed across the box's width under the photo, and the box may
    then run onto the next page."""
    return len(text) + BESIDE_LINE * text.count("\n") <= BESIDE_CHARS


# --- images ---------------------------------------------------------------------------------------

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


# --- style (the sheet's own; the frame's is page_frame.FRAME_STYLESHEET) --------------------------

STYLESHEET = """
.sign { font-size: 10pt; line-height: 2; white-space: nowrap; text-align: left; }
.sign .line { display: inline-block; width: 28mm; border-bottom: 0.5pt solid #000; }
.sign .date { display: inline-block; width: 10mm; border-bottom: 0.5pt solid #000; }
.sign .year { width: 13mm; }
.foot .pages { margin-top: 1mm; }

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
"""
