"""The frame every page of generated paper shares (现场照片, 送达回证, 现场笔录, 询问笔录, 卷内目录, 备考表):
A4, in the top margin the form's name, the bureau, the case number and the party beside the QR code
of the document's verification address (the address and the code printed under it), at the foot
what each form puts there and "第 N 页 共 M 页", and for a copy a 副本 mark on every page. A page
taken out of the file still says what it belongs to and where to check it.

The frame is markup (``templates/documents/_paper.html``, which each form's template extends) plus
the stylesheet below; a form adds only its own rules. Images (photos, signatures drawn on the
phone) are handed to WeasyPrint from memory under ``photo:<n>`` addresses by :func:`fetcher`, which
refuses every other URL, so no text on a form can make the renderer open a file or reach the
network. Nothing here touches a database, the storage or a request.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

from fieldapp.i18n import SHANGHAI, parse_when
from fieldapp.documents.pdf import MONO_FAMILY, _environment, _families, _warn_missing_fonts
from .weasy import weasyprint as _weasy

UNRECORDED = "未记录"
"""Printed where a fact is missing, so a blank is never mistaken for a field someone forgot to fill in."""
UNNUMBERED = "尚未编号"
"""Printed in place of a case number the case does not have yet."""


@dataclass(frozen=True)
class Signer:
    """One who signs a document: a witness, the recipient, a party, an officer. ``role`` is what
    they are (a witness's organisation and role, an officer's 执法证号, a recipient's relation);
    ``signed`` says they signed (on paper or on the phone's screen); ``signature_png`` is the
    signature drawn on the phone, when there is one; ``note`` is why they refused, or how they
    confirmed without signing."""
    name: str
    role: str = ""
    signed: bool = False
    signature_png: bytes | None = None
    refused: bool = False
    note: str = ""


SIGNED_ELSEWHERE = "已签名，本件未附签名图像"
"""Printed under the line of one who signed (on paper, say) when no signature image is given."""


@dataclass(frozen=True)
class SignLine:
    """One signer as ``documents/_signer.html`` prints it."""
    name: str
    label: str  # what ``role`` is, e.g. 执法证号：
    role: str
    url: str | None  # the signature image's address, None for a line to sign on
    refused: bool
    note: str
    date: str  # the day they signed or refused, "" for blanks to date by hand


def sign_line(signer: Signer, label: str, role: str, images: Images, date: str) -> SignLine:
    """How ``signer`` is printed: 拒绝签名 with the note, the drawn signature, or a line to sign on;
    dated with ``date`` when they signed on the phone or refused on the spot."""
    url = images.add(signer.signature_png) if signer.signature_png and not signer.refused else None
    note = signer.note.strip()
    if signer.signed and not url and not signer.refused:
        note = "；".join(x for x in (SIGNED_ELSEWHERE, note) if x)
    return SignLine(name=signer.name.strip(), label=label if role else "", role=role, url=url,
                    refused=signer.refused, note=note, date=date if url or signer.refused else "")


class Images:
    """The pictures one document draws, each under the ``photo:<n>`` address the template uses."""

    def __init__(self) -> None:
        self.by_url: dict[str, tuple[bytes, str]] = {}

    def add(self, data: bytes) -> str:
        url = f"photo:{len(self.by_url)}"
        self.by_url[url] = (data, mime(data))
        return url


def render_pdf(template: str, stylesheet: str, *, verify_url: str, images: Images | None = None,
               **context) -> bytes:
    """Render ``template`` (which extends ``documents/_paper.html``) with the frame's stylesheet
    followed by the form's own ``stylesheet`` (FAMILIES and MONO in it name the font stacks)."""
    weasyprint = _weasy()  # loads Pango (and puts back what its import changes): only when a document is made

    _warn_missing_fonts()
    html = _environment().get_template(template).render(
        qr=qr_svg(verify_url), created=datetime.now(UTC).replace(microsecond=0),
        unrecorded=UNRECORDED, unnumbered=UNNUMBERED, **context)
    return weasyprint.HTML(string=html, url_fetcher=fetcher((images or Images()).by_url)).write_pdf(
        stylesheets=[weasyprint.CSS(string=_fonts(FRAME_STYLESHEET)), weasyprint.CSS(string=_fonts(stylesheet))])


def form_time(value: datetime | str, *, minutes: bool) -> str:
    """Beijing time as forms write it (2026年3月4日 9时05分), or the date alone; text that is no time
    is printed as given, nothing as 未记录."""
    when = parse_when(value)
    if when is None:
        return str(value).strip() or UNRECORDED
    when = when.astimezone(SHANGHAI)
    day = f"{when.year}年{when.month}月{when.day}日"
    return f"{day} {when.hour}时{when.minute:02d}分" if minutes else day


def qr_svg(data: str) -> str:
    """The QR code of ``data`` as an inline SVG element (a viewBox and no size: CSS sizes it), with
    the four-module quiet zone the standard asks for."""
    import segno

    return segno.make(data, error="m", micro=False).svg_inline(omitsize=True, border=4, svgclass="qr-code",
                                                               lineclass=None)


def mime(data: bytes) -> str:
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    return "application/octet-stream"  # WeasyPrint still tries Pillow on it


def fetcher(images: dict[str, tuple[bytes, str]]):
    """A fetcher that answers the document's ``photo:<n>`` addresses from memory and refuses every
    other URL (as :func:`fieldapp.documents.pdf.url_fetcher` does)."""
    weasyprint = _weasy()

    base = getattr(weasyprint.urls, "URLFetcher", None)
    if base is None:  # WeasyPrint before 70: a plain function returning a dict
        def fetch(url: str, *args, **kwargs):
            if url not in images:
                raise ValueError(f"generated paper loads no resources but its pictures ({url[:80]})")
            data, kind = images[url]
            return {"string": data, "mime_type": kind, "redirected_url": url}
        return fetch
    return _fetcher_class(base)(images)


@cache
def _fetcher_class(base: type) -> type:
    weasyprint = _weasy()

    class PictureFetcher(base):
        def __init__(self, images: dict[str, tuple[bytes, str]]):
            super().__init__(allowed_protocols=())
            self._images = images

        def fetch(self, url, headers=None):
            if url not in self._images:
                raise ValueError(f"generated paper loads no resources but its pictures ({url[:80]})")
            data, kind = self._images[url]
            return weasyprint.urls.URLFetcherResponse(url, data, {"Content-Type": kind})

    return PictureFetcher


@cache
def _fonts(stylesheet: str) -> str:
    return stylesheet.replace("FAMILIES", _families()).replace("MONO", _families(MONO_FAMILY))


FRAME_STYLESHEET = """
@page {
  size: A4 portrait;
  margin: 36mm 18mm 24mm 22mm;
  @top-left { content: element(head); width: 104mm; vertical-align: bottom; padding-bottom: 3mm; }
  @top-right { content: element(qr); width: 66mm; vertical-align: bottom; padding-bottom: 2mm; }
  @bottom-center { content: element(foot); width: 170mm; vertical-align: top; padding-top: 3mm; }
}
html { font-family: FAMILIES; font-size: 10.5pt; line-height: 1.5; color: #000; }
body { margin: 0; }
h1 { font-size: 18pt; text-align: center; letter-spacing: 0.5em; margin: 0 0 2mm; }
p { margin: 0; }
.bureau { text-align: center; font-size: 12pt; margin: 0 0 1mm; }
.code { font-family: MONO; font-size: 8pt; overflow-wrap: anywhere; }
.empty { color: #444; }

.head { position: running(head); font-size: 8.5pt; line-height: 1.45; color: #222; }
.head .form { font-size: 11pt; font-weight: bold; letter-spacing: 0.2em; color: #000; }

.qr { position: running(qr); font-size: 7pt; line-height: 1.3; }
.qr table { width: 100%; border-collapse: collapse; table-layout: fixed; }
.qr td { padding: 0; border: none; vertical-align: bottom; text-align: left; }
.qr td.symbol { width: 24mm; }
.qr svg { display: block; width: 24mm; height: 24mm; }
.qr .label { font-size: 7.5pt; }
.qr .url { font-family: MONO; font-size: 6.5pt; overflow-wrap: anywhere; word-break: break-all; margin-top: 0.8mm; }

.foot { position: running(foot); font-size: 9pt; line-height: 1.5; text-align: center; }
.foot .pages::before { content: "第 " counter(page) " 页 共 " counter(pages) " 页"; }
.copy-mark { display: inline-block; border: 1.5pt solid #000; padding: 0.5mm 3mm; margin-bottom: 1.5mm;
             font-size: 11pt; font-weight: bold; letter-spacing: 0.1em; }
.copy-mark .why { font-size: 9pt; font-weight: normal; letter-spacing: 0; }
.watermark { position: fixed; top: 85mm; left: 0; width: 170mm; z-index: -1; text-align: center;
             font-size: 120pt; font-weight: bold; letter-spacing: 0.3em; line-height: 1; color: #dadada;
             transform: rotate(-30deg); }

table.facts { width: 100%; border-collapse: collapse; table-layout: fixed; margin: 1mm 0 3mm; font-size: 10pt; }
table.facts th, table.facts td { border: 0.5pt solid #000; padding: 0.8mm 1.5mm; text-align: left;
                                 vertical-align: top; overflow-wrap: anywhere; }
table.facts th { width: 18mm; font-weight: bold; }

table.signer { width: 100%; border-collapse: collapse; table-layout: fixed; break-inside: avoid; }
table.signer + table.signer { border-top: 0.5pt dotted #666; }
table.signer td { border: none; padding: 1.2mm 0; vertical-align: middle; text-align: left; overflow-wrap: anywhere; }
table.signer td.who { width: 52mm; padding-right: 2mm; line-height: 1.35; }
table.signer td.date { width: 34mm; text-align: right; white-space: nowrap; }
table.signer .name { font-weight: bold; }
table.signer .role { font-size: 9pt; }
table.signer .note { font-size: 9pt; line-height: 1.35; white-space: pre-wrap; margin-top: 0.5mm; }
.signature { display: block; width: 40mm; height: 14mm; object-fit: contain; object-position: left center; }
.sigline { display: inline-block; width: 38mm; height: 9mm; border-bottom: 0.5pt solid #000; }
.refused { font-weight: bold; border: 1pt solid #000; padding: 0 1.5mm; }
.blank { display: inline-block; width: 7mm; border-bottom: 0.5pt solid #000; }
.blank.year { width: 10mm; }
"""
