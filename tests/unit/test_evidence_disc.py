"""Evidence package folder → ISO 9660 / Joliet / UDF disc images (fieldapp/documents/disc.py, art. 27).

Every image is opened again with pycdlib and every file is read back by its Joliet path and by its UDF
path; when isoinfo, 7z or bsdtar is installed, one of them lists the image as a second reader."""
from __future__ import annotations

import hashlib
import io
import json
import os
import random
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pycdlib
import pytest

from tests.conftest import skip_or_fail

from fieldapp.documents import disc

FIXED = ("manifest.json", "verify.html", "verify.py", "README.txt", "fieldapp_chain.py", "fieldapp_signing.py")
LONG = "originals/004-" + "市场监督管理局执法人员现场检查时拍摄的经营场所门头与营业执照照片" + ".jpg"  # > 64 bytes for Joliet


def _package(root: Path, *, extra: dict[str, int] | None = None, sizes: dict[str, int] | None = None) -> list[str]:
    """A package folder like package.write_folder's: returns its file paths in manifest order."""
    rnd = random.Random(27)
    rid, did = uuid.UUID(int=rnd.getrandbits(128)), uuid.UUID(int=rnd.getrandbits(128))
    listed = {
        "originals/001-现场照片.jpg": 300_000,
        "previews/001-现场照片-预览.jpg": 60_000,
        "originals/002-询问笔录录音.m4a": 250_000,
        "originals/003-IMG_0042.JPG": 200_000,
        LONG: 150_000,
        f"revisions/{rid}/2.json": 2_000,
        f"revisions/{uuid.UUID(int=rnd.getrandbits(128))}/1.json": 1_500,
        f"devices/{did}.pem": 178,
        "chain/events.jsonl": 40_000,
        "chain/checkpoints.json": 900,
        "chain/public_key.pem": 113,
        "证据说明.pdf": 120_000,
        "电子数据证据提取笔录.pdf": 80_000,
        **(sizes or {}),
    }
    entries = []
    for path, size in listed.items():
        data = rnd.randbytes(size)
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
        entries.append({"path": path, "role": "x", "sha256": hashlib.sha256(data).hexdigest(), "size": size})
    for path in FIXED[1:]:
        (root / path).write_text(f"# {path}\n" + "核验" * 500, encoding="utf-8")
    manifest = {"format": "fieldapp-evidence-package/1", "package_id": str(uuid.UUID(int=rnd.getrandbits(128))),
                "files": entries}
    (root / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    for path, size in (extra or {}).items():  # files the manifest does not list
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(rnd.randbytes(size))
    return list(listed) + sorted(extra or {})


def _open(path: Path) -> pycdlib.PyCdlib:
    iso = pycdlib.PyCdlib()
    iso.open(str(path))
    return iso


def _tree(iso: pycdlib.PyCdlib, view: str) -> set[str]:
    return {f"{top}/{name}".lstrip("/") for top, _dirs, names in iso.walk(**{view: "/"}) for name in names}


def _read(iso: pycdlib.PyCdlib, **where: str) -> bytes:
    out = io.BytesIO()
    iso.get_file_from_iso_fp(out, **where)
    return out.getvalue()


def _disc_txt(iso: pycdlib.PyCdlib) -> str:
    raw = _read(iso, udf_path="/DISC.txt")
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw
    return raw.decode("utf-8-sig")


def _joliet_names(text: str) -> dict[str, str]:
    """package path -> Joliet path for the names DISC.txt says were changed."""
    part = text.split("/ Files whose Joliet names are shortened", 1)
    if len(part) == 1:
        return {}
    lines = part[1].splitlines()[2:]
    return dict(line.split("\t") for line in lines if line)


def _check_image(d: disc.Disc, root: Path, expected: list[str]) -> str:
    """The image holds exactly ``expected`` + DISC.txt, each byte for byte under UDF and Joliet."""
    assert d.path.is_file() and d.path.stat().st_size == d.size and d.path.name == f"{d.label}.iso"
    iso = _open(d.path)
    try:
        assert _tree(iso, "udf_path") == set(expected) | {"DISC.txt"}
        text = _disc_txt(iso)
        joliet = _joliet_names(text)
        assert len(_tree(iso, "joliet_path")) == len(expected) + 1
        assert len(_tree(iso, "iso_path")) == len(expected) + 1
        for name in _tree(iso, "iso_path"):  # generated 8.3 names of d-characters, unique per folder
            for part in name.split("/")[:-1]:
                assert re.fullmatch(r"[A-Z0-9_]{1,8}", part), name
            assert re.fullmatch(r"[A-Z0-9_]{1,8}\.[A-Z0-9_]{0,3};1", name.split("/")[-1]), name
        for rel in expected:
            data = (root / rel).read_bytes()
            assert _read(iso, udf_path="/" + rel) == data, rel
            assert _read(iso, joliet_path="/" + joliet.get(rel, rel)) == data, rel
            assert f"{rel}\t{len(data)}\t{hashlib.sha256(data).hexdigest()}" in text.splitlines()
        assert iso.pvd.volume_identifier.decode().rstrip() == d.label
        return text
    finally:
        iso.close()


def test_one_disc_keeps_names_and_bytes(tmp_path):
    root, out = tmp_path / "package", tmp_path / "out"
    root.mkdir()
    files = _package(root, extra={"notes/说明（补充）.txt": 1_000})  # not in the manifest: carried all the same
    discs = disc.write_discs(root, out)

    assert len(discs) == 1
    d = discs[0]
    assert (d.number, d.of, d.label) == (1, 1, "FIELDAPP_1_1")
    everything = list(FIXED) + files
    assert d.files == everything  # fixed files first, then manifest order, then the unlisted
    text = _check_image(d, root, everything)
    assert sorted(p.name for p in out.iterdir()) == ["FIELDAPP_1_1.iso"]

    iso = _open(d.path)
    try:
        joliet = _tree(iso, "joliet_path")
        assert {"originals/001-现场照片.jpg", "证据说明.pdf", "电子数据证据提取笔录.pdf",
                "previews/001-现场照片-预览.jpg", "notes/说明（补充）.txt"} <= joliet
        assert LONG in _tree(iso, "udf_path") and LONG not in joliet  # UDF keeps the long name whole
        short = _joliet_names(text)[LONG]
        assert short in joliet and short.endswith(".jpg") and len(short.split("/")[-1].encode()) <= 64
        assert iso.joliet_vd.volume_identifier.decode("utf-16-be").rstrip() == "FIELDAPP_1_1"
    finally:
        iso.close()
    lines = text.splitlines()
    assert lines[0] == "证据包光盘　第 1 张，共 1 张" and "卷标：FIELDAPP_1_1" in lines
    zh, en = text.index("第 1 张，共 1 张"), text.index("Evidence package disc 1 of 1")
    assert zh < en < text.index("本光盘上的文件 / Files on this disc")
    assert "Files on other discs" not in text and "copy the files of all" not in text


def test_split_across_discs(tmp_path):
    root, out = tmp_path / "package", tmp_path / "out"
    root.mkdir()
    files = _package(root)
    capacity = 1_200_000
    label = "case-2026-0042 evidence package"
    discs = disc.write_discs(root, out, capacity=capacity, label=label)

    m = len(discs)
    assert m >= 3
    seen: list[str] = []
    for n, d in enumerate(discs, 1):
        assert (d.number, d.of) == (n, m)
        assert d.label == "CASE_2026_0042_EVIDENCE_PACKAGE"[: 32 - len(f"_{n}_{m}")] + f"_{n}_{m}"
        assert len(d.label) == 32 and d.size <= capacity
        assert d.files[: len(FIXED)] == list(FIXED)
        own = d.files[len(FIXED):]
        assert own and own == [f for f in files if f in own]  # manifest order on each disc
        seen += own
        text = _check_image(d, root, d.files)
        assert f"第 {n} 张，共 {m} 张" in text and f"disc {n} of {m}" in text and d.label in text
        others = text.split("其他光盘上的文件 / Files on other discs", 1)[1].splitlines()[2:]
        listed = dict(reversed(line.split("\t")) for line in others if line and line[0].isdigit())
        assert listed == {f: str(k) for k, e in enumerate(discs, 1) if k != n for f in e.files[len(FIXED):]}
        iso = _open(d.path)
        try:  # Joliet and UDF hold 16 characters of the label; ISO 9660 all 32
            short = iso.joliet_vd.volume_identifier.decode("utf-16-be").rstrip()
            assert len(short) == 16 and short.endswith(f"_{n}_{m}")
        finally:
            iso.close()
    assert sorted(seen) == sorted(files) and len(seen) == len(set(seen))  # each on exactly one disc
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{d.label}.iso" for d in discs)


def test_first_fit_fills_earlier_discs(tmp_path):
    """A file goes on the first disc with room: no later file would have fitted well within an earlier disc."""
    root = tmp_path / "package"
    root.mkdir()
    _package(root)
    capacity = 1_200_000
    discs = disc.write_discs(root, tmp_path / "out", capacity=capacity)
    limit = disc._limit(capacity)
    for k, earlier in enumerate(discs):
        room = limit - earlier.size
        for later in discs[k + 1:]:
            for rel in later.files[len(FIXED):]:
                need = ((root / rel).stat().st_size // disc.BLOCK + 2) * disc.BLOCK
                assert need > room - 64 * disc.BLOCK, (rel, earlier.number, later.number)


def test_the_files_every_disc_carries_are_those_named_that_exist(tmp_path):
    root = tmp_path / "package"
    root.mkdir()
    files = _package(root)
    discs = disc.write_discs(root, tmp_path / "out", capacity=1_200_000,
                             always_on_every_disc=("README.txt", "absent.txt", "manifest.json"))
    assert len(discs) >= 2 and all(d.files[:2] == ["README.txt", "manifest.json"] for d in discs)
    rest = sorted(f for d in discs for f in d.files[2:])
    assert rest == sorted([*files, *(f for f in FIXED if f not in ("README.txt", "manifest.json"))])


def test_a_file_bigger_than_a_disc_is_refused(tmp_path):
    root, out = tmp_path / "package", tmp_path / "out"
    root.mkdir()
    out.mkdir()
    (out / "other.zip").write_bytes(b"kept")
    _package(root, sizes={"originals/005-执法记录仪视频.mp4": 2_000_000})
    with pytest.raises(disc.DiscError) as err:
        disc.write_discs(root, out, capacity=1_200_000)
    message = str(err.value)
    assert "originals/005-执法记录仪视频.mp4" in message and "2000000" in message and "does not fit" in message
    assert "BD_BYTES" in message  # it would fit on a Blu-ray disc
    assert [p.name for p in out.iterdir()] == ["other.zip"]


def test_a_file_too_big_even_for_a_blu_ray_disc(tmp_path):
    """Refused before any file is read (the files are sparse: reading them would take minutes)."""
    root, out = tmp_path / "package", tmp_path / "out"
    root.mkdir()
    _package(root)
    huge = root / "originals" / "006-整日录像.mp4"
    with huge.open("wb") as fh:
        fh.truncate(disc.BD_BYTES)
    if huge.stat().st_blocks * 512 > 1 << 20:
        skip_or_fail("this filesystem has no sparse files")
    with pytest.raises(disc.DiscError) as err:
        disc.write_discs(root, out, capacity=disc.BD_BYTES)
    assert "006-整日录像.mp4" in str(err.value) and "BD_BYTES" not in str(err.value)
    huge.unlink()
    with (root / "originals" / "007-录像.mp4").open("wb") as fh:
        fh.truncate(6_000_000_000)
    with pytest.raises(disc.DiscError, match="use Blu-ray discs"):
        disc.write_discs(root, out)
    assert not out.exists()


def test_the_exact_size_check_catches_an_estimate_that_falls_short(tmp_path, monkeypatch):
    root, out = tmp_path / "package", tmp_path / "out"
    root.mkdir()
    files = _package(root)
    monkeypatch.setattr(disc, "_BASE_BLOCKS", 0)  # the estimate now undercounts every image by ~280 blocks
    plans = []
    real_pack = disc._pack
    monkeypatch.setattr(disc, "_pack", lambda *a: plans.append(real_pack(*a)) or plans[-1])
    discs = disc.write_discs(root, out, capacity=1_200_000)
    assert len(plans) >= 2  # measured too big, planned again with less room
    assert all(d.size <= disc._limit(1_200_000) for d in discs)
    assert sorted(f for d in discs for f in d.files[len(FIXED):]) == sorted(files)


def test_images_are_not_written_inside_the_package(tmp_path):
    root = tmp_path / "package"
    root.mkdir()
    _package(root)
    with pytest.raises(disc.DiscError, match="inside the package"):
        disc.write_discs(root, root / "discs")


def test_a_failure_while_writing_leaves_no_image(tmp_path, monkeypatch):
    root, out = tmp_path / "package", tmp_path / "out"
    root.mkdir()
    _package(root)
    real = pycdlib.PyCdlib.write_fp
    writes = []

    def flaky(self, outfp, *args, **kwargs):
        if isinstance(outfp, disc._Nowhere):  # measuring, not writing
            return real(self, outfp, *args, **kwargs)
        writes.append(outfp)
        if len(writes) == 2:
            outfp.write(b"\0" * 100_000)
            raise OSError(28, "No space left on device")
        return real(self, outfp, *args, **kwargs)

    monkeypatch.setattr(pycdlib.PyCdlib, "write_fp", flaky)
    with pytest.raises(OSError, match="No space left"):
        disc.write_discs(root, out, capacity=1_200_000)
    assert len(writes) == 2
    assert list(out.iterdir()) == []  # neither the finished first image nor the partial second


def test_names_the_disc_cannot_hold_are_refused(tmp_path):
    root, out = tmp_path / "package", tmp_path / "out"
    root.mkdir()
    _package(root, extra={"DISC.txt": 10})
    with pytest.raises(disc.DiscError, match="DISC.txt"):
        disc.write_discs(root, out)
    assert not out.exists() or list(out.iterdir()) == []


def test_manifest_names_a_missing_file(tmp_path):
    root = tmp_path / "package"
    root.mkdir()
    _package(root)
    (root / "证据说明.pdf").unlink()
    with pytest.raises(disc.DiscError, match="证据说明.pdf"):
        disc.write_discs(root, tmp_path / "out")


def test_volume_labels():
    assert disc._volume_label("FIELDAPP", 1, 2) == "FIELDAPP_1_2"
    assert disc._volume_label("证据 pkg-2026", 2, 3) == "___PKG_2026_2_3"
    long = disc._volume_label("x" * 40, 10, 12)
    assert long == "X" * 26 + "_10_12" and len(long) == 32
    assert disc._short_label(long) == "X" * 10 + "_10_12"


def test_iso_names_stay_unique():
    used: set[str] = set()
    names = [disc._iso_name(stem, ext, used) for stem, ext in
             [("证据说明", "pdf"), ("电子数据证据提取笔录", "pdf"), ("001-现场照片", "jpg"), ("001-现场照片2", "jpg"),
              ("originals", None), ("originals", ""), ("a" * 20, "jpeg")]]
    assert names == ["FILE.PDF", "FILE_1.PDF", "001.JPG", "001_2.JPG", "ORIGINAL", "ORIGIN_1.", "AAAAAAAA.JPE"]
    joliet: set[str] = set()
    assert disc._joliet_name("a:b?.txt", joliet) == "a_b_.txt"
    assert disc._joliet_name("a;b?.txt", joliet) == "a_b_~1.txt"


def _reader(*names: str) -> str | None:
    return next((shutil.which(n) for n in names if shutil.which(n)), None)


SEVEN_Z, BSDTAR, ISOINFO = _reader("7zz", "7z"), _reader("bsdtar"), _reader("isoinfo")


def _run(*command: str) -> str:
    return subprocess.run(command, capture_output=True, check=True, timeout=60,
                          env={**os.environ, "LC_ALL": "C.UTF-8"}).stdout.decode("utf-8", "replace")


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    root = tmp_path_factory.mktemp("package")
    files = _package(root)
    [d] = disc.write_discs(root, tmp_path_factory.mktemp("out"))
    return root, files, d


def _same_tree(root: Path, extracted: Path, files: list[str]) -> None:
    for rel in (*FIXED, *files):
        assert (extracted / rel).read_bytes() == (root / rel).read_bytes(), rel


def test_7zip_reads_the_udf_names_and_bytes(image, tmp_path):
    if not SEVEN_Z:  # scripts/test installs it: a second reader, independent of pycdlib
        skip_or_fail("7-Zip (Debian: 7zip) is not installed")
    root, files, d = image
    listing = _run(SEVEN_Z, "l", "-sccUTF-8", str(d.path))
    assert LONG in listing and "证据说明.pdf" in listing  # the whole long name: 7-Zip reads UDF
    _run(SEVEN_Z, "x", "-y", f"-o{tmp_path}", str(d.path))
    _same_tree(root, tmp_path, files)


def test_bsdtar_reads_the_joliet_names_and_bytes(image, tmp_path):
    if not BSDTAR:  # scripts/test installs it: a second reader, independent of pycdlib
        skip_or_fail("bsdtar (Debian: libarchive-tools) is not installed")
    root, files, d = image
    listing = _run(BSDTAR, "-tf", str(d.path)).splitlines()
    assert "originals/001-现场照片.jpg" in listing and "电子数据证据提取笔录.pdf" in listing
    _run(BSDTAR, "-xf", str(d.path), "-C", str(tmp_path))
    _same_tree(root, tmp_path, [f for f in files if f != LONG])


def test_isoinfo_sees_joliet_level_3(image):
    if not ISOINFO:  # scripts/test installs it: a second reader, independent of pycdlib
        skip_or_fail("isoinfo (Debian: genisoimage) is not installed")
    _root, _files, d = image
    info = _run(ISOINFO, "-d", "-i", str(d.path))
    assert "Joliet with UCS level 3 found" in info and f"Volume id: {d.label}" in info
    assert "/originals/003-IMG_0042.JPG" in _run(ISOINFO, "-J", "-f", "-i", str(d.path)).splitlines()


_ZEROS = bytes(disc.WRITE_BLOCK)


class _SparseSource(io.RawIOBase):
    """A 4.3 GB file of zeros but for a few marks, read as pycdlib reads a file (reading a real sparse
    file this size costs the kernel 10 s or more of copying zero pages on a busy machine)."""

    def __init__(self, size: int, marks: dict[int, bytes]):
        self.size, self.marks, self.at = size, marks, 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def seek(self, offset, whence=os.SEEK_SET):
        self.at = offset if whence == os.SEEK_SET else (self.at + offset if whence == os.SEEK_CUR else self.size + offset)
        return self.at

    def tell(self):
        return self.at

    def read(self, n=-1):
        n = self.size - self.at if n < 0 else min(n, self.size - self.at)
        start, self.at = self.at, self.at + n
        hits = [(at, mark) for at, mark in self.marks.items() if at < start + n and at + len(mark) > start]
        if not hits:
            return _ZEROS if n == len(_ZEROS) else bytes(n)
        out = bytearray(n)
        for at, mark in hits:
            for i, byte in enumerate(mark):
                if start <= at + i < start + n:
                    out[at + i - start] = byte
        return bytes(out)


class _SparseOut(io.RawIOBase):
    """Writes blocks of zeros as holes, so a 4 GiB image costs no disk."""

    def __init__(self, raw):
        self.raw, self.end, self.mode = raw, 0, "wb"

    def writable(self):
        return True

    def seekable(self):
        return True

    def write(self, b):
        n = len(b)
        if b is _ZEROS or (n >= 4096 and b.count(0) == n):
            self.raw.seek(n, os.SEEK_CUR)
        else:
            self.raw.write(b)
        self.end = max(self.end, self.raw.tell())
        return n

    def seek(self, offset, whence=os.SEEK_SET):
        return self.raw.seek(offset, whence)

    def tell(self):
        return self.raw.tell()

    def flush(self):
        if not self.raw.closed:
            self.raw.truncate(max(self.end, os.fstat(self.raw.fileno()).st_size))
            self.raw.flush()

    def fileno(self):
        return self.raw.fileno()

    def close(self):
        if not self.closed:
            self.flush()
            self.raw.close()
        super().close()


def test_a_file_over_4_gib_is_recorded_in_several_extents(tmp_path, monkeypatch):
    """Interchange level 3: a 4.3 GB file has two directory records (multi-extent) in ISO 9660 and in
    Joliet and is one file in UDF; bytes on both sides of the 4 GiB boundary and at its end read back.
    The file is sparse on disk and its contents are served by a stand-in reader; the image is written
    with holes."""
    root, out = tmp_path / "package", tmp_path / "out"
    root.mkdir()
    big = "originals/005-执法记录仪视频.mp4"
    size = 4_300_000_000
    marks = {0: b"FIELDAPP" * 2, 0xFFFFF800 - 8: b"4GiB-EDGE" * 2, size - 16: b"THE-END." * 2}
    path = root / big
    path.parent.mkdir(parents=True)
    with path.open("wb") as fh:
        fh.truncate(size)
    if path.stat().st_blocks * 512 > 1 << 20:
        skip_or_fail("this filesystem has no sparse files")
    _package(root)
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    manifest["files"].append({"path": big, "role": "original", "sha256": "ab" * 32, "size": size})
    (root / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")

    real_open = Path.open
    monkeypatch.setattr(Path, "open", lambda self, mode="r", *a, **k: (
        _SparseOut(real_open(self, mode, *a, **k)) if mode == "xb" else real_open(self, mode, *a, **k)))
    monkeypatch.setattr(pycdlib.inode, "open", lambda name, mode="r", *a, **k: (
        _SparseSource(size, marks) if name == str(path) else open(name, mode, *a, **k)), raising=False)
    [d] = disc.write_discs(root, out)
    assert big in d.files and size < d.size <= disc.DVD_BYTES
    assert d.path.stat().st_blocks * 512 < 64 << 20  # written with holes

    iso = _open(d.path)
    try:
        [joliet] = [c for c in iso.list_children(joliet_path="/originals")
                    if c.file_identifier().startswith("005-".encode("utf-16-be"))]
        [standard] = [c for c in iso.list_children(iso_path="/ORIGINAL") if c.file_identifier().startswith(b"005")]
        for first in (joliet, standard):
            second = first.data_continuation
            assert first.file_flags & 0x80 and second is not None and not second.file_flags & 0x80
            assert second.data_continuation is None and first.data_length + second.data_length == size
        assert iso.get_record(udf_path="/" + big).get_data_length() == size
        for where in ({"udf_path": "/" + big}, {"joliet_path": "/" + big}, {"iso_path": standard_path(iso)}):
            with iso.open_file_from_iso(**where) as fh:
                for at, mark in marks.items():
                    fh.seek(at)
                    assert fh.read(len(mark)) == mark, (where, at)
        assert f"{big}\t{size}\t{'ab' * 32}" in _disc_txt(iso)
    finally:
        iso.close()


def standard_path(iso: pycdlib.PyCdlib) -> str:
    [name] = [n for top, _d, names in iso.walk(iso_path="/ORIGINAL") for n in names if n.startswith("005")]
    return "/ORIGINAL/" + name
