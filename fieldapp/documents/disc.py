"""An evidence package folder as ISO 9660 disc images for burning (art. 27: "复制为光盘后附卷").

Each image carries three views of the same files (docs/decisions/015-evidence-package.md):

- **UDF 2.60** with every name exactly as in the package (Chinese included): the view Windows, macOS
  and Linux use on such a disc, so the one a court's computer shows.
- **Joliet** (UCS-2) with the package's names where Joliet can hold them; a name longer than Joliet's
  64 characters (pycdlib counts its UTF-8 bytes) or holding ``* / : ; ? \\`` is shortened or changed, made
  unique, and DISC.txt lists it beside its full name.
- **ISO 9660** interchange level 3: generated 8.3 names of ``A-Z 0-9 _``, unique in their folder; a file
  over 4 GiB is recorded in several extents (level 3 multi-extent), which UDF sees as one file.

When the package does not fit on one disc it is split: every disc carries the files every disc needs
(the manifest, the verifiers, the README and the helpers: ``always_on_every_disc``) and a ``DISC.txt``
saying which disc it is, what is on it (size and SHA-256 of each file) and on which disc every other file
is; the other files are packed first-fit in manifest order and never split. The folder tree is kept.
No Rock Ridge: Linux reads the UDF view.

The size of each image is planned with an estimate that never undercounts, then measured exactly
(pycdlib reports an image's total size to its progress callback before writing a byte) and kept within
``capacity`` less a margin (2 % + 8 MiB, at most a tenth of the capacity) for media and burners that
hold a little less than their nominal size. File contents are streamed from disk by pycdlib. Every image
is written under a temporary name and all are renamed only when all are complete; on any error the
partial files are removed, so a half-written image or an incomplete set is never offered.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import secrets
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pycdlib

DVD_BYTES = 4_700_000_000  # single-layer DVD±R
BD_BYTES = 25_025_314_816  # single-layer BD-R

DISC_TXT = "DISC.txt"
BLOCK = 2048
WRITE_BLOCK = 1 << 20
APP_IDENT = "FIELDAPP EVIDENCE PACKAGE"

_MIB = 1 << 20
_LABEL_MAX = 32  # ISO 9660 volume identifier
_SHORT_LABEL_MAX = 16  # Joliet's volume identifier: 32 bytes of UCS-2 (pycdlib uses one for Joliet and UDF)
_EXTENT_MAX = 0xFFFFF800  # the largest extent one ISO 9660 / Joliet directory record holds (as pycdlib, xorriso)
_JOLIET_MAX = 64  # bytes of UTF-8, as pycdlib checks them
_JOLIET_BAD = set('*/:;?\\')
_ISO_DEPTH_MAX = 7  # Ecma-119 6.8.2.1: eight levels with the root, so seven folders

# Blocks of an image with no file beyond its three empty root directories: system area, volume
# descriptors, UDF anchors and descriptor sequences, path tables (measured with pycdlib 1.22: 272 blocks
# with the three root directory blocks), with a little to spare.
_BASE_BLOCKS = 269 + 16
_ROOT_RECS = (68, 68, 40)  # bytes of the root's "." and ".." in the ISO 9660, Joliet and UDF directories
_REC_USE = BLOCK - 255  # ISO 9660 / Joliet records never straddle a block: count a block as holding this much


class DiscError(ValueError):
    """The package cannot be written as disc images (a file too big for the disc, a name UDF cannot
    hold, an unreadable folder); says why, in Chinese and English."""


@dataclass(frozen=True)
class Disc:
    number: int  # 1-based
    of: int  # how many discs
    label: str  # volume label, e.g. "FIELDAPP_1_2"
    path: Path  # the .iso written
    files: list[str]  # package-relative paths on this disc (fixed files first; DISC.txt is not a package file)
    size: int  # bytes of the .iso


@dataclass
class _File:
    rel: str  # package-relative, "/"-separated
    src: Path | None  # None: DISC.txt, made here
    size: int
    fixed: bool = False
    sha256: str = ""
    iso: str = ""  # absolute paths in each view
    joliet: str = ""
    udf: str = ""
    recs: tuple[int, int, int] = (0, 0, 0)  # bytes its records take in its folder: ISO 9660, Joliet, UDF
    dirs: list[str] = field(default_factory=list)  # its folders, outermost first ("" is the root, not listed)

    @property
    def blocks(self) -> int:
        return _ceil(self.size, BLOCK) + 1  # the data and its UDF File Entry


@dataclass
class _Dir:
    iso: str
    joliet: str
    udf: str
    recs: tuple[int, int, int]  # bytes its record takes in its parent
    ptrs: tuple[int, int]  # bytes of its path-table record: ISO 9660, Joliet


def write_discs(package_dir: Path, out_dir: Path, *, capacity: int = DVD_BYTES, label: str = "FIELDAPP",
                always_on_every_disc: Sequence[str] = ("manifest.json", "verify.html", "verify.py", "README.txt",
                                                       "fieldapp_chain.py", "fieldapp_signing.py")) -> list[Disc]:
    """Write ``package_dir`` as one or more ISO images ``<LABEL>_<n>_<m>.iso`` in ``out_dir`` (each at most
    ``capacity`` bytes less the margin); returns them in order. Raises :class:`DiscError` when a file
    cannot fit on one disc or a name cannot be recorded; then no image is left in ``out_dir``."""
    package_dir, out_dir = Path(package_dir), Path(out_dir)
    if out_dir.resolve().is_relative_to(package_dir.resolve()):
        raise DiscError("光盘映像不能写进证据包文件夹 / the images cannot be written inside the package folder")
    limit = _limit(capacity)
    manifest = _read_manifest(package_dir)
    files = _inventory(package_dir, always_on_every_disc, manifest)
    dirs = _name(files)
    fixed = [f for f in files if f.fixed]
    rest = [f for f in files if not f.fixed]
    package_id = str(manifest.get("package_id") or "") if manifest else ""
    # DISC.txt lists every file (this disc's with size and SHA-256, the others' with their disc): never
    # longer than all of them with size and SHA-256 (64 characters each, not known yet), plus headings
    bound = len(_disc_txt(10**6, 10**6, "X" * _LABEL_MAX, package_id, files, {})) + 64 * len(files) + 1024
    txt = _File(DISC_TXT, None, bound)
    _name_disc_txt(txt)
    budget = limit // BLOCK
    plan = _pack(fixed, txt, rest, dirs, budget, capacity)  # refuses a file too big before reading any
    _digests(files, manifest)

    for _ in range(4):
        m = len(plan)
        labels = [_volume_label(label, n, m) for n in range(1, m + 1)]
        where = {f.rel: n for n, disc_files in enumerate(plan, 1) for f in disc_files}
        images = []
        try:
            for n, disc_files in enumerate(plan, 1):
                text = _disc_txt(n, m, labels[n - 1], package_id, fixed + disc_files, where)
                iso, keep = _master(fixed + disc_files, text, dirs, labels[n - 1])
                images.append((iso, keep, _image_size(iso)))
        except BaseException:
            _close(images)
            raise
        over = max(size for _, _, size in images) - limit
        if over <= 0:
            break
        _close(images)  # the estimate fell short (it should not): plan again with less room
        budget -= _ceil(over, BLOCK) + 16
        plan = _pack(fixed, txt, rest, dirs, budget, capacity)
    else:  # pragma: no cover - the estimate overcounts
        raise DiscError(f"无法把证据包排进容量 {capacity} 字节的光盘 / could not lay the package out on discs of "
                        f"{capacity} bytes")
    return _write_all(images, plan, fixed, labels, out_dir)


# ------------------------------------------------------------------------------------ the files


def _read_manifest(root: Path) -> dict | None:
    try:
        data = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # no manifest (or not ours): the folder is still written, in path order
    return data if isinstance(data, dict) else None


def _listed(manifest: dict | None) -> list[dict]:
    entries = (manifest or {}).get("files")
    return [e for e in entries if isinstance(e, dict) and isinstance(e.get("path"), str)] if isinstance(
        entries, list) else []


def _inventory(root: Path, always: Sequence[str], manifest: dict | None) -> list[_File]:
    if not root.is_dir():
        raise DiscError(f"证据包文件夹不存在 / no package folder at {root}")
    found: dict[str, _File] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            path = Path(dirpath) / name
            st = path.lstat()
            rel = path.relative_to(root).as_posix()
            if stat.S_ISDIR(st.st_mode):
                continue
            if not stat.S_ISREG(st.st_mode):
                raise DiscError(f"证据包中有非普通文件（如链接）/ the package holds something that is not a regular "
                                f"file: {rel}")
            if rel.count("/") > _ISO_DEPTH_MAX:
                raise DiscError(f"文件夹层级超过 ISO 9660 的 8 级 / folders nested deeper than ISO 9660's eight "
                                f"levels: {rel}")
            found[rel] = _File(rel, path, st.st_size)
    if DISC_TXT in found:
        raise DiscError(f"证据包根目录中不能有 {DISC_TXT}（光盘说明用此名）/ the package root may not hold "
                        f"{DISC_TXT}: each disc's description takes that name")
    ordered: list[_File] = []
    for rel in dict.fromkeys(always):
        if rel in found:
            found[rel].fixed = True
            ordered.append(found.pop(rel))
    missing = []
    for entry in _listed(manifest):
        rel = entry["path"]
        if rel in found:
            ordered.append(found.pop(rel))
        elif not any(f.rel == rel for f in ordered):
            missing.append(rel)
    if missing:
        raise DiscError("清单列出的文件不在证据包文件夹中 / the manifest lists files the package folder does not "
                        "hold: " + ", ".join(missing[:10]) + (" …" if len(missing) > 10 else ""))
    ordered.extend(found[rel] for rel in sorted(found))  # files the manifest does not list, in path order
    return ordered


def _digests(files: list[_File], manifest: dict | None) -> None:
    """SHA-256 of each file for DISC.txt: the manifest's where it lists the file at its present size,
    otherwise read from disk in pieces."""
    listed = {e["path"]: e for e in _listed(manifest)}
    for f in files:
        entry = listed.get(f.rel, {})
        sha = entry.get("sha256")
        if isinstance(sha, str) and re.fullmatch(r"[0-9a-f]{64}", sha) and entry.get("size") == f.size:
            f.sha256 = sha
        else:
            with f.src.open("rb") as fh:
                f.sha256 = hashlib.file_digest(fh, "sha256").hexdigest()


# ------------------------------------------------------------------------------------ names


def _name(files: list[_File]) -> dict[str, _Dir]:
    """Give every file and folder its name in each view, the same on every disc (so unique on each)."""
    used: dict[str, tuple[set[str], set[str]]] = {"": ({"DISC.TXT"}, {DISC_TXT})}  # per folder: ISO, Joliet
    dirs: dict[str, _Dir] = {}
    for f in files:
        parts = f.rel.split("/")
        for part in parts:
            _check_udf(part, f.rel)
        parent = ""
        for i, part in enumerate(parts[:-1]):
            path = "/".join(parts[: i + 1])
            if path not in dirs:
                iso_names, joliet_names = used.setdefault(parent, (set(), set()))
                iso = _iso_name(part, None, iso_names)
                joliet = _joliet_name(part, joliet_names)
                up = dirs.get(parent)
                dirs[path] = _Dir(f"{up.iso if up else ''}/{iso}", f"{up.joliet if up else ''}/{joliet}",
                                  "/" + path, _recs(iso, joliet, part, 1), (_ptr(len(iso)), _ptr(2 * len(joliet))))
                used[path] = (set(), set())
            parent = path
        iso_names, joliet_names = used.setdefault(parent, (set(), set()))
        stem, dot, ext = parts[-1].rpartition(".")
        if not dot:
            stem, ext = ext, ""
        iso = _iso_name(stem, ext, iso_names)
        joliet = _joliet_name(parts[-1], joliet_names)
        up = dirs.get(parent)
        f.iso = f"{up.iso if up else ''}/{iso};1"
        f.joliet = f"{up.joliet if up else ''}/{joliet}"
        f.udf = "/" + f.rel
        f.dirs = ["/".join(parts[: i + 1]) for i in range(len(parts) - 1)]
        f.recs = _recs(iso + ";1", joliet + ";1", parts[-1], max(1, _ceil(f.size, _EXTENT_MAX)))
    return dirs


def _name_disc_txt(f: _File) -> None:
    f.iso, f.joliet, f.udf = "/DISC.TXT;1", "/" + DISC_TXT, "/" + DISC_TXT
    f.recs = _recs("DISC.TXT;1", DISC_TXT + ";1", DISC_TXT, 1)


def _d_chars(text: str, most: int) -> str:
    return re.sub(r"[^A-Z0-9_]+", "_", text.upper()).strip("_")[:most]


def _iso_name(stem: str, ext: str | None, used: set[str]) -> str:
    """An 8.3 name (8 for a folder) of A-Z 0-9 _, unique among ``used`` (which it joins)."""
    base = _d_chars(stem, 8) or ("DIR" if ext is None else "FILE")
    ext3 = _d_chars(ext or "", 3)
    name, k = base, 0
    while (name + "." + ext3 if ext3 else name) in used:
        k += 1
        name = base[: 8 - len(str(k)) - 1] + "_" + str(k)
    shown = name + "." + ext3 if ext3 else name
    used.add(shown)
    return shown if ext is None else name + "." + ext3


def _joliet_name(name: str, used: set[str]) -> str:
    """The name itself when Joliet can hold it; otherwise a changed or shortened one, unique in ``used``."""
    clean = "".join("_" if c in _JOLIET_BAD or ord(c) < 0x20 or ord(c) > 0xFFFF else c for c in name)
    stem, dot, ext = clean.rpartition(".")
    if not dot or not stem or len(ext) > 10:
        stem, ext = clean, ""
    ext = "." + ext if ext else ""
    candidate, k = _fit_joliet(stem, ext, ""), 0
    while candidate in used:
        k += 1
        candidate = _fit_joliet(stem, ext, f"~{k}")
    used.add(candidate)
    return candidate


def _fit_joliet(stem: str, ext: str, tag: str) -> str:
    while stem and len((stem + tag + ext).encode("utf-8")) > _JOLIET_MAX:
        stem = stem[:-1]
    return stem + tag + ext


def _check_udf(name: str, rel: str) -> None:
    try:
        too_long = len(name.encode("latin-1")) > 253  # pycdlib: one byte per character when it can
    except UnicodeEncodeError:
        too_long = len(name.encode("utf-16-be")) > 252  # else UTF-16: L_FI (with its one-byte prefix) <= 254
    if too_long or "\x00" in name:
        raise DiscError(f"名称过长，UDF 无法记录（最多 126 个汉字）/ a name too long for UDF (126 UTF-16 units at "
                        f"most): {rel}")


# ------------------------------------------------------------------------------------ sizes


def _ceil(n: int, d: int) -> int:
    return -(-n // d)


def _limit(capacity: int) -> int:
    """The most bytes an image may have: the capacity less a margin (2 % + 8 MiB, at most a tenth)."""
    limit = capacity - min(capacity // 50 + 8 * _MIB, capacity // 10)
    if limit < (_BASE_BLOCKS + 64) * BLOCK:
        raise DiscError(f"光盘容量 {capacity} 字节太小 / a disc capacity of {capacity} bytes is too small")
    return limit


def _ptr(id_len: int) -> int:
    return 8 + id_len + id_len % 2


def _recs(iso: str, joliet: str, udf: str, extents: int) -> tuple[int, int, int]:
    """Upper bounds of the bytes of one entry's directory records in the ISO 9660, Joliet and UDF folders."""
    try:
        udf_len = 1 + len(udf.encode("latin-1"))
    except UnicodeEncodeError:
        udf_len = 1 + len(udf.encode("utf-16-be"))
    iso_len, joliet_len = len(iso), len(joliet.encode("utf-16-be"))
    return (extents * (33 + iso_len + 1 - iso_len % 2), extents * (33 + joliet_len + 1), _ceil(38 + udf_len, 4) * 4)


def _dir_blocks(recs: list[int]) -> int:
    return _ceil(recs[0], _REC_USE) + _ceil(recs[1], _REC_USE) + _ceil(recs[2], BLOCK)


def _pt_blocks(size: int) -> int:
    return 2 * (_ceil(_ceil(size, BLOCK), 2) * 2)  # pycdlib: pairs of blocks, a little- and a big-endian table


class _Estimate:
    """An upper bound of an image's blocks, kept as files are added."""

    def __init__(self, dirs: dict[str, _Dir]):
        self.dirs = dirs
        self.recs: dict[str, list[int]] = {"": list(_ROOT_RECS)}
        self.ptrs = [10, 10]  # the root's path-table records
        self.blocks = _BASE_BLOCKS + _dir_blocks(self.recs[""])

    def _change(self, f: _File) -> tuple[int, dict[str, list[int]], list[int]]:
        touched: dict[str, list[int]] = {}
        ptrs = list(self.ptrs)
        added = f.blocks

        def recs(path: str) -> list[int]:
            if path not in touched:
                touched[path] = list(self.recs.get(path, _ROOT_RECS))
            return touched[path]

        parent = ""
        for path in f.dirs:
            if path not in self.recs and path not in touched:
                d = self.dirs[path]
                r = recs(parent)
                for i in range(3):
                    r[i] += d.recs[i]
                recs(path)
                ptrs[0] += d.ptrs[0]
                ptrs[1] += d.ptrs[1]
                added += 1  # the folder's UDF File Entry
            parent = path
        r = recs(parent)
        for i in range(3):
            r[i] += f.recs[i]
        for path, new in touched.items():
            added += _dir_blocks(new) - (_dir_blocks(self.recs[path]) if path in self.recs else 0)
        added += sum(_pt_blocks(n) - _pt_blocks(o) for n, o in zip(ptrs, self.ptrs, strict=True))
        return added, touched, ptrs

    def with_file(self, f: _File) -> int:
        return self.blocks + self._change(f)[0]

    def add(self, f: _File) -> None:
        added, touched, ptrs = self._change(f)
        self.blocks += added
        self.recs.update(touched)
        self.ptrs = ptrs


def _pack(fixed: list[_File], txt: _File, rest: list[_File], dirs: dict[str, _Dir], budget: int,
          capacity: int) -> list[list[_File]]:
    """First-fit in manifest order: each file goes on the first disc with room for it."""
    def fresh() -> _Estimate:
        e = _Estimate(dirs)
        for f in (*fixed, txt):
            e.add(f)
        return e

    empty = fresh()
    if empty.blocks > budget:
        raise DiscError(f"每张光盘都要带的文件已超出容量 {capacity} 字节 / the files every disc carries do not fit "
                        f"on a disc of {capacity} bytes")
    room = (budget - empty.blocks) * BLOCK
    for f in rest:
        if empty.with_file(f) > budget:
            hint = ""
            if capacity < BD_BYTES and empty.with_file(f) * BLOCK <= _limit(BD_BYTES):
                hint = "；请改用蓝光光盘 / use Blu-ray discs (capacity=BD_BYTES)"
            raise DiscError(f"文件 {f.rel}（{f.size} 字节）放不进一张容量 {capacity} 字节的光盘（扣除文件系统和每张光盘都带的"
                            f"文件后约 {room} 字节）/ file {f.rel} ({f.size} bytes) does not fit on one disc of "
                            f"{capacity} bytes (about {room} bytes after the filesystem and the files every disc "
                            f"carries){hint}")
    discs: list[tuple[_Estimate, list[_File]]] = []
    for f in rest:
        for est, on in discs:
            if est.with_file(f) <= budget:
                est.add(f)
                on.append(f)
                break
        else:
            est = fresh()
            est.add(f)
            discs.append((est, [f]))
    return [on for _, on in discs] or [[]]


class _Measured(Exception):
    pass


class _Nowhere(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def write(self, b) -> int:
        raise _Measured  # never reached: the size is known before the first byte


def _image_size(iso: pycdlib.PyCdlib) -> int:
    """The image's exact size: pycdlib lays the image out and reports its total to the progress callback
    before it writes a byte; stopping there reads no file."""
    seen: list[int] = []

    def progress(done: int, total: int) -> None:
        seen.append(total)
        raise _Measured

    try:
        iso.write_fp(_Nowhere(), progress_cb=progress)
    except _Measured:
        pass
    if not seen:  # pragma: no cover
        raise RuntimeError("pycdlib did not report the image size")
    return seen[0]


# ------------------------------------------------------------------------------------ the images


def _volume_label(label: str, n: int, m: int) -> str:
    suffix = f"_{n}_{m}"
    base = re.sub(r"[^A-Z0-9_]", "_", label.upper()) or "DISC"
    return base[: _LABEL_MAX - len(suffix)] + suffix


def _short_label(label: str) -> str:
    if len(label) <= _SHORT_LABEL_MAX:
        return label
    base, n, m = label.rsplit("_", 2)
    suffix = f"_{n}_{m}"
    return base[: max(0, _SHORT_LABEL_MAX - len(suffix))] + suffix


def _master(files: list[_File], text: bytes, dirs: dict[str, _Dir], label: str) -> tuple[pycdlib.PyCdlib, list]:
    """The image in pycdlib, laid out but not written: files are named by path and read when written."""
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, joliet=3, udf="2.60", vol_ident=_short_label(label), app_ident_str=APP_IDENT)
    if len(label) > _SHORT_LABEL_MAX:  # Joliet and UDF hold 16 characters; the ISO 9660 volume id all 32
        iso.pvd.volume_identifier = label.encode("ascii").ljust(_LABEL_MAX)
    keep = [io.BytesIO(text)]
    try:
        for path in sorted({d for f in files for d in f.dirs}, key=lambda p: (p.count("/"), p)):
            d = dirs[path]
            iso.add_directory(iso_path=d.iso, joliet_path=d.joliet, udf_path=d.udf)
        for f in files:
            iso.add_file(str(f.src), iso_path=f.iso, joliet_path=f.joliet, udf_path=f.udf)
        iso.add_fp(keep[0], len(text), iso_path="/DISC.TXT;1", joliet_path="/" + DISC_TXT, udf_path="/" + DISC_TXT)
    except pycdlib.pycdlibexception.PyCdlibException as exc:
        iso.close()
        raise DiscError(f"无法生成光盘映像 / cannot lay out the disc image: {exc}") from exc
    except BaseException:
        iso.close()
        raise
    return iso, keep


def _close(images: list) -> None:
    for iso, *_ in images:
        try:
            iso.close()
        except Exception:  # noqa: BLE001 - closing what is being thrown away
            pass


def _write_all(images: list, plan: list[list[_File]], fixed: list[_File], labels: list[str],
               out_dir: Path) -> list[Disc]:
    partial: list[Path] = []
    renamed: list[Path] = []
    discs: list[Disc] = []
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for n, (iso, _keep, size) in enumerate(images, 1):
            tmp = out_dir / f".{labels[n - 1]}.{secrets.token_hex(4)}.part"
            partial.append(tmp)
            with tmp.open("xb") as fh:
                iso.write_fp(fh, blocksize=WRITE_BLOCK)
                fh.flush()
                os.fsync(fh.fileno())
                written = os.fstat(fh.fileno()).st_size
            iso.close()
            if written != size:
                raise DiscError(f"光盘映像大小不符 / image {labels[n - 1]} came out {written} bytes, not {size}")
        for n, tmp in enumerate(partial, 1):
            target = out_dir / f"{labels[n - 1]}.iso"
            os.replace(tmp, target)
            renamed.append(target)
            discs.append(Disc(n, len(plan), labels[n - 1], target, [f.rel for f in fixed + plan[n - 1]],
                              target.stat().st_size))
        _fsync_dir(out_dir)
    except BaseException:
        _close(images)
        for path in partial + renamed:
            path.unlink(missing_ok=True)
        raise
    return discs


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - a platform without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


# ------------------------------------------------------------------------------------ DISC.txt


def _disc_txt(n: int, m: int, label: str, package_id: str, on_disc: list[_File], where: dict[str, int]) -> bytes:
    """The disc's description: Chinese, then English, then the lists (UTF-8 with a BOM and CRLF, so the
    Notepad of an old Windows shows it)."""
    total = sum(f.size for f in on_disc)
    here = {f.rel for f in on_disc}
    lines = [f"证据包光盘　第 {n} 张，共 {m} 张", f"卷标：{label}"]
    lines += [f"证据包编号：{package_id}"] if package_id else []
    lines += [
        f"本光盘有证据包中的 {len(on_disc)} 个文件，共 {total} 字节；下面列出每个文件的路径、字节数和 SHA-256。",
        (f"核验时，请把全部 {m} 张光盘上的文件复制到同一个文件夹（保持文件夹结构），再用 verify.html 或 verify.py 核验；"
         "只核验一张光盘时，其他光盘上的文件会被列为缺失。" if m > 1 else
         "可直接在本光盘上，或把文件复制到一个文件夹后，用 verify.html 或 verify.py 核验。")
        + "本文件（DISC.txt）只说明本光盘，不属于证据包，不必复制。",
        "",
        f"Evidence package disc {n} of {m}",
        f"Volume label: {label}",
    ]
    lines += [f"Package: {package_id}"] if package_id else []
    lines += [
        f"This disc holds {len(on_disc)} files of the package, {total} bytes; below are each file's path, size in "
        "bytes and SHA-256.",
        (f"To verify, copy the files of all {m} discs into one folder (keeping the folders), then use verify.html "
         "or verify.py; checking one disc alone reports the files on the other discs as missing." if m > 1 else
         "To verify, use verify.html or verify.py on this disc, or on its files copied into a folder.")
        + " This file (DISC.txt) only describes this disc, is not part of the package and need not be copied.",
        "",
        "本光盘上的文件 / Files on this disc",
        "路径 / path\t字节 / bytes\tSHA-256",
    ]
    lines += [f"{f.rel}\t{f.size}\t{f.sha256}" for f in on_disc]
    others = [(k, rel) for rel, k in where.items() if rel not in here]
    if others:
        lines += ["", "其他光盘上的文件 / Files on other discs", "光盘 / disc\t路径 / path"]
        lines += [f"{k}\t{rel}" for k, rel in sorted(others)]
    changed = []
    for f in on_disc:
        shown = f.joliet.split("/")
        parts = f.rel.split("/")
        if shown != [""] + parts:
            changed.append(f"{f.rel}\t{f.joliet.lstrip('/')}")
    if changed:
        lines += ["", "Joliet 文件系统中名称被改短或改写的文件（UDF 中名称完整）/ Files whose Joliet names are shortened "
                  "or changed (their UDF names are complete)", "路径 / path\tJoliet"]
        lines += changed
    return ("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8")
