"""Server CPU time of the photo pipeline per 12-MP JPEG, against the least any server must spend on
the same file: a Pillow draft-mode decode to the largest size the pipeline makes.

Generates a few realistic 12-MP phone photos (4000×3000, structure plus sensor-like noise, 3–5 MB,
EXIF with capture time, GPS, device and orientation), then for each measures, in the same run and
interleaved, ``time.process_time()`` of ``fieldapp.media.pipeline.process`` (sniff, EXIF, draft
decode, preview and thumbnail, orientation, JPEG encoding) and of ``open → draft("RGB", (1280,
1280)) → load``. Prints figures per photo and, as the last line, ``{"ratio": …}``: the median over
photos of median pipeline time ÷ median decode time. Goal: ≤ 2.5.

    .venv/bin/python bench/photo_ingest.py [--runs 7]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fieldapp.media import pipeline  # noqa: E402

SIZE = (4000, 3000)
GOAL = 2.5


def make_photo(path: Path, seed: int, orientation: int) -> None:
    """A 12-MP JPEG that compresses like a phone photo: shapes, gradients, texture and noise."""
    width, height = SIZE
    gradient = Image.linear_gradient("L").resize(SIZE)
    im = Image.merge("RGB", (gradient, gradient.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
                             Image.new("L", SIZE, 60 + seed * 40)))
    draw = ImageDraw.Draw(im)
    for i in range(60):  # shop fronts, signs, shelves
        x = (i * 677 + seed * 131) % width
        y = (i * 389 + seed * 57) % height
        draw.rectangle((x, y, x + 150 + (i * 37) % 500, y + 80 + (i * 53) % 300),
                       fill=((i * 71) % 256, (i * 113 + seed) % 256, (i * 29) % 256),
                       outline=(255, 255, 255), width=4)
        draw.line((0, y, width, (y * 7 + i) % height), fill=(20, 20, 20), width=3)
    texture = Image.effect_noise((width // 4, height // 4), 70).resize(SIZE, Image.Resampling.BICUBIC)
    im = Image.blend(im, Image.merge("RGB", (texture,) * 3), 0.25)
    noise = Image.effect_noise(SIZE, 18)
    im = Image.blend(im, Image.merge("RGB", (noise,) * 3).filter(ImageFilter.SMOOTH), 0.12)
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0112] = "Xiaomi", "23127PN0CC", orientation
    sub = exif.get_ifd(0x8769)
    sub[0x9003], sub[0x9011] = f"2025:06:0{seed + 1} 09:3{seed}:12", "+08:00"
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4], gps[31] = "N", (36.0, 49.0, 7.2), "E", (118.0, 18.0, 3.9), 6.0
    im.save(path, "JPEG", quality=93, exif=exif)


def draft_decode(path: Path, side: int) -> None:
    with Image.open(path) as im:
        im.draft("RGB", (side, side))
        im.load()


def cpu(fn, *args, **kwargs) -> float:
    started = time.process_time()
    fn(*args, **kwargs)
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--photos", type=int, default=3)
    args = parser.parse_args()
    side = max(pipeline.PREVIEW_SIZES.values())
    ratios = []
    with tempfile.TemporaryDirectory(prefix="photo-ingest-") as tmp:
        for seed in range(args.photos):
            path = Path(tmp) / f"IMG_{seed}.jpg"
            make_photo(path, seed, orientation=(1, 6, 3, 8)[seed % 4])
            result = pipeline.process(path)  # warm-up (and a sanity check)
            assert not result.flags and set(result.previews) == set(pipeline.PREVIEW_SIZES), result
            draft_decode(path, side)
            work, decode = [], []
            for _ in range(args.runs):
                work.append(cpu(pipeline.process, path, declared_mime="image/jpeg"))
                decode.append(cpu(draft_decode, path, side))
            ratio = statistics.median(work) / statistics.median(decode)
            ratios.append(ratio)
            print(f"{path.name}: {path.stat().st_size / 1e6:.1f} MB, orientation "
                  f"{result.exif.orientation}, previews "
                  + ", ".join(f"{k} {len(v) // 1024} KB" for k, v in result.previews.items())
                  + f"; pipeline {statistics.median(work) * 1000:.1f} ms CPU "
                  f"(min {min(work) * 1000:.1f}), draft decode to {side} px "
                  f"{statistics.median(decode) * 1000:.1f} ms (min {min(decode) * 1000:.1f}); "
                  f"ratio {ratio:.2f}")
    ratio = round(statistics.median(ratios), 2)
    print(f"median ratio {ratio:.2f} (goal ≤ {GOAL}) over {len(ratios)} photos × {args.runs} runs")
    print(json.dumps({"ratio": ratio}))


if __name__ == "__main__":
    main()
