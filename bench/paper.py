"""Wall time to print the 现场照片 sheet (fieldapp.documents.paper) of a case with 300 photos.

Generates 300 distinct photo previews as the server keeps them (1280×960 JPEG, 150–300 KB: shop
fronts, signs and shelves as shapes and gradients, texture and sensor-like noise, as
bench/photo_ingest.py makes its phone photos, but at preview size), renders one small sheet to load
Pango and the fonts, then times ``photo_sheet_pdf`` on all 300 (two a page, the QR code on every
page). Prints the previews' sizes, the pages, the PDF's size and the seconds (wall and CPU) and, as
the last line, ``{"sheet_s": …, "pages": …, "photos": …}``. Goal: under 60 s.

    .venv/bin/python bench/paper.py [--photos 300]
"""
from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter
from pypdf import PdfReader

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fieldapp.documents.paper import PhotoSheetDoc, SheetPhoto, photo_sheet_pdf  # noqa: E402

SIZE = (1280, 960)
GOAL_S = 60.0
T0 = datetime(2026, 6, 3, 1, 15, 42, tzinfo=UTC)
PLACES = ("临淄区齐都镇", "临淄区辛店街道", "临淄区稷下街道", "临淄区闻韶街道")
OFFICERS = ("张伟（执法证号 37030300001）", "李秀英（执法证号 37030300002）")
SHOWS = ("当事人经营场所门头及营业执照悬挂情况", "货架上摆放的超过保质期的预包装食品，标签生产日期清晰可见",
         "冷藏柜内未标明生产日期的散装熟食", "仓库内堆放的涉案产品及其外包装", "当事人在现场检查笔录上签字的情况")


def textures(count: int) -> list[Image.Image]:
    """Noise layers shared by the photos (each photo takes its own crop and offset of one)."""
    layers = []
    width, height = SIZE
    for seed in range(count):
        coarse = Image.effect_noise((width // 4 + 64, height // 4 + 64), 70 + seed * 5)
        coarse = coarse.resize((width + 256, height + 256), Image.Resampling.BICUBIC)
        fine = Image.effect_noise((width + 256, height + 256), 22).filter(ImageFilter.SMOOTH)
        layers.append((Image.blend(coarse, fine, 0.45)))
    return layers


def make_preview(seed: int, layers: list[Image.Image]) -> bytes:
    """A 1280×960 JPEG that compresses like a phone photo's preview: shapes, gradients, texture, noise."""
    width, height = SIZE
    gradient = Image.linear_gradient("L").resize(SIZE)
    if seed % 2:
        gradient = gradient.transpose(Image.Transpose.ROTATE_180)
    im = Image.merge("RGB", (gradient, gradient.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
                             Image.new("L", SIZE, (60 + seed * 37) % 256)))
    draw = ImageDraw.Draw(im)
    for i in range(40):  # shop fronts, signs, shelves
        x = (i * 211 + seed * 131) % width
        y = (i * 127 + seed * 57) % height
        draw.rectangle((x, y, x + 40 + (i * 37 + seed) % 180, y + 25 + (i * 53) % 110),
                       fill=((i * 71 + seed * 13) % 256, (i * 113 + seed) % 256, (i * 29 + seed * 7) % 256),
                       outline=(255, 255, 255), width=2)
        draw.line((0, y, width, (y * 7 + i + seed) % height), fill=(20, 20, 20), width=2)
    layer = layers[seed % len(layers)]
    dx, dy = (seed * 37) % 256, (seed * 91) % 256
    texture = layer.crop((dx, dy, dx + width, dy + height))
    im = Image.blend(im, Image.merge("RGB", (texture,) * 3), 0.3)
    out = io.BytesIO()
    im.save(out, "JPEG", quality=80)
    return out.getvalue()


def sheet(previews: list[bytes]) -> PhotoSheetDoc:
    photos = [SheetPhoto(image=data, number=n + 1,
                         taken_at=None if n % 50 == 49 else T0 + timedelta(minutes=n, seconds=n * 7 % 60),
                         place=f"{PLACES[n % len(PLACES)]} 36.{812345 + n:06d}, 118.{305678 + n * 3:06d} ±{4 + n % 9} m",
                         officer=OFFICERS[n % len(OFFICERS)],
                         description=f"{SHOWS[n % len(SHOWS)]}（第 {n + 1} 张）")
              for n, data in enumerate(previews)]
    return PhotoSheetDoc(case_number="临市监罚〔2026〕0127号", party="淄博齐都食品有限公司",
                         case_id="0b7c1f1e-4a8e-4d5e-9a51-2f7f3c0e9a01", photos=photos,
                         verify_url="https://zfjl.linzi.gov.cn/verify/7K3M-Q9XZ-2B4D", code="7K3M-Q9XZ-2B4D")


def page_count(pdf: bytes) -> int:
    return len(PdfReader(io.BytesIO(pdf)).pages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=300)
    args = parser.parse_args()

    started = time.perf_counter()
    layers = textures(6)
    previews = [make_preview(seed, layers) for seed in range(args.photos)]
    sizes = sorted(len(p) for p in previews)
    print(f"{len(previews)} previews {SIZE[0]}×{SIZE[1]} JPEG in {time.perf_counter() - started:.1f} s: "
          f"{sizes[0] / 1024:.0f}–{sizes[-1] / 1024:.0f} KB (median {statistics.median(sizes) / 1024:.0f} KB), "
          f"{sum(sizes) / 1e6:.1f} MB in all")

    started = time.perf_counter()
    photo_sheet_pdf(sheet(previews[:2]))  # loads Pango and the fonts
    print(f"warm-up (2 photos): {time.perf_counter() - started:.2f} s")

    doc = sheet(previews)
    started, cpu_started = time.perf_counter(), time.process_time()
    pdf = photo_sheet_pdf(doc)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    pages = page_count(pdf)
    print(f"sheet of {len(previews)} photos: {pages} pages, {len(pdf) / 1e6:.1f} MB, "
          f"{seconds:.1f} s wall, {cpu:.1f} s CPU ({seconds / max(pages, 1) * 1000:.0f} ms a page; goal < {GOAL_S:.0f} s)")
    print(json.dumps({"sheet_s": round(seconds, 1), "pages": pages, "photos": len(previews)}))


if __name__ == "__main__":
    main()
