"""Translation catalogues: extract, update, compile and check (Flask-Babel reads the .mo files).

    python scripts/i18n.py update    # re-extract messages and merge them into zh_CN and en
    python scripts/i18n.py compile   # write the .mo files (committed, so a clone runs as it is)
    python scripts/i18n.py check     # fail if a message lacks a translation or a .mo is stale

zh_CN is the language officers read; en is kept complete (msgstr = msgid) so that a missing
translation is visible as such rather than silently falling back.
"""
from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]
TRANSLATIONS = ROOT / "fieldapp" / "translations"
POT = TRANSLATIONS / "messages.pot"
# Babel expands zh_CN to zh_Hans_CN, and gettext looks the catalogue up under that name.
LOCALES = ("zh_Hans_CN", "en")


def po_path(locale: str) -> Path:
    return TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po"


def extract() -> Catalog:
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg",
                    "-k", "_l", "-k", "lazy_gettext", "--no-location", "--omit-header",
                    "--sort-output", "-o", str(POT), "."], cwd=ROOT, check=True, capture_output=True)
    with POT.open("rb") as fh:
        return read_po(fh)


def update() -> None:
    template = extract()
    seed = json.loads((ROOT / "scripts" / "zh_seed.json").read_text(encoding="utf-8"))
    for locale in LOCALES:
        path = po_path(locale)
        if path.exists():
            with path.open("rb") as fh:
                catalog = read_po(fh, locale=locale)
        else:
            catalog = Catalog(locale=locale, project="fieldapp")
        catalog.update(template, no_fuzzy_matching=True)
        for message in catalog:
            if not message.id:
                continue
            if locale == "en":
                message.string = message.id  # the msgids are the English text
            elif locale == "zh_Hans_CN" and not message.string and message.id in seed:
                message.string = seed[message.id]
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            write_po(fh, catalog, omit_header=False, sort_output=True, include_previous=False,
                     width=120)
    compile_all()


def _mo_bytes(locale: str) -> bytes:
    with po_path(locale).open("rb") as fh:
        catalog = read_po(fh, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    return buffer.getvalue()


def compile_all() -> None:
    for locale in LOCALES:
        po_path(locale).with_suffix(".mo").write_bytes(_mo_bytes(locale))


def problems() -> list[str]:
    found = []
    template = extract()
    wanted = {m.id for m in template if m.id}
    for locale in LOCALES:
        with po_path(locale).open("rb") as fh:
            catalog = read_po(fh, locale=locale)
        have = {m.id: m.string for m in catalog if m.id}
        for msgid in sorted(wanted):
            if not have.get(msgid):
                found.append(f"{locale}: no translation for {msgid!r}")
            elif locale == "en" and have[msgid] != msgid:
                found.append(f"en: {msgid!r} is translated to {have[msgid]!r}; en must repeat the msgid")
        mo = po_path(locale).with_suffix(".mo")
        if not mo.exists() or mo.read_bytes() != _mo_bytes(locale):
            found.append(f"{locale}: {mo.name} is stale; run scripts/i18n.py compile")
    return found


if __name__ == "__main__":
    action = sys.argv[1] if len(sys.argv) > 1 else "check"
    if action == "update":
        update()
    elif action == "compile":
        compile_all()
    else:
        issues = problems()
        print("\n".join(issues) or "catalogues complete")
        sys.exit(1 if issues else 0)
