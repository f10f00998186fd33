"""When an on-site record (现场笔录, 询问笔录) is the signed 笔录 itself, and why not when it is not.

The rules are data (``onsite_records.toml``, each with its article); this module only reads them and
works out the facts of one record's payload as the phone signed it. A record that misses any rule
prints as a copy (副本) naming what is missing, never as the 笔录.

The payload (written by ``static/js/capture/views/onsite_record.js``)::

    form            "scene" (现场笔录) | "inquiry" (询问笔录)
    started_at, ended_at, place
    subject         whom it is about: name, id_no, sex, employer, position, phone, address,
                    representative, relation (what they are to the case)
    officers        [{name, cert_no}] who made it; recorder (记录人) one of their names
    notice          {credentials_shown, recusal ("not_requested" | "requested"), text}
    content         现场情况 (scene) — or qa: [{q, a}] (inquiry); opinion: the party's own words
    signing         {content_sha256, party: {outcome, signature, confirmation, refused_reason},
                     witness: {name, org, id_no, signature} | null, officers: [{name, cert_no, signature}]}

``signing.content_sha256`` is the SHA-256 of the RFC 8785 bytes of :func:`signed_content` — the
record, the party's outcome and confirmation words, the witness's identity and the officers named,
without the images — taken by the phone when the record is saved (the pads are cleared whenever
any of it changes after it was shown): a later change, by anyone, no longer matches; and a
signature image carried over from an earlier revision onto other content is caught even if the
hash was recomputed. Signatures are the SHA-256 of the PNG drawn on the phone, stored as the
record's files; on paper a signature counts only when its image is one of the revision's own files
and has arrived. A payload with values of the wrong type is read as far as it can be and prints
as a copy.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache

from . import tomldata

OUTCOMES = ("signed", "refused", "absent")


class OnsiteRulesError(ValueError):
    pass


class _Entry(tomldata.Entry):
    error = OnsiteRulesError


@dataclass(frozen=True)
class Form:
    id: str
    title: str
    form_number: int
    subject_zh: str
    absent_allowed: bool
    confirmation_zh: str


@dataclass(frozen=True)
class Rule:
    id: str
    when: str
    needs: str
    article: str
    zh: str
    en: str


@dataclass(frozen=True)
class Assessment:
    """``problems`` are the rules the record misses, in the file's order; none means it is the
    signed 笔录."""
    outcome: str | None
    problems: tuple[Rule, ...]

    @property
    def signed_original(self) -> bool:
        return not self.problems


FACTS = ("well_formed", "content_matches_signatures", "two_officers_signed", "every_officer_signed",
         "credentials_shown", "recusal_recorded", "content_present", "party_signature", "refusal_reason",
         "witness_signature", "absence_allowed", "never")


@cache
def builtin() -> tuple[dict[str, Form], tuple[Rule, ...]]:
    data = tomldata.load("fieldapp.rules", "onsite_records.toml", OnsiteRulesError)
    forms = {}
    for i, raw in enumerate(data.pop("forms", [])):
        e = _Entry(raw, f"forms[{i}]")
        forms[e.get("id")] = Form(id=e.get("id"), title=e.get("title"), form_number=e.get("form_number"),
                                  subject_zh=e.get("subject_zh"), absent_allowed=bool(e.get("absent_allowed")),
                                  confirmation_zh=e.get("confirmation_zh"))
        e.close()
    rules = []
    for i, raw in enumerate(data.pop("rules", [])):
        e = _Entry(raw, f"rules[{i}]")
        rule = Rule(id=e.get("id"), when=e.get("when"), needs=e.get("needs"), article=e.get("article"),
                    zh=e.get("zh"), en=e.get("en"))
        e.close()
        if rule.needs not in FACTS:
            raise OnsiteRulesError(f"rules[{i}]: unknown fact {rule.needs!r}")
        if rule.when not in (*OUTCOMES, "any", "none"):
            raise OnsiteRulesError(f"rules[{i}]: unknown outcome {rule.when!r}")
        rules.append(rule)
    if data:
        raise OnsiteRulesError(f"onsite_records.toml: unknown table(s) {', '.join(sorted(data))}")
    return forms, tuple(rules)


def form(form_id: str | None) -> Form | None:
    return builtin()[0].get(form_id or "")


UNSIGNED_KEYS = ("withdrawn", "withdrawn_reason")
"""A later withdrawal (with its reason) is not part of what was signed."""
RECUSALS = ("not_requested", "requested")
SIGNATURE_MAX_BYTES = 2 * 1024 * 1024
"""A signature drawn on the phone is a PNG of some tens of kilobytes; a larger file is no signature."""


def signed_content(payload: dict) -> dict:
    """What the signatures are for: everything the party and the officers saw and confirmed — the
    record, the party's outcome and confirmation words, the witness's identity and the officers
    named — without the signature images themselves, the hash, or a later withdrawal. The phone
    takes the same object (``capture/views/onsite_record.js`` signedContent)."""
    body = {k: v for k, v in payload.items() if k not in UNSIGNED_KEYS and k != "signing"}
    signing = payload.get("signing")
    if isinstance(signing, dict):
        party, witness, officers = signing.get("party"), signing.get("witness"), signing.get("officers")
        body["signing"] = {
            "party": {k: v for k, v in party.items() if k != "signature"} if isinstance(party, dict) else party,
            "witness": {k: v for k, v in witness.items() if k != "signature"} if isinstance(witness, dict) else witness,
            "officers": [{"name": o.get("name"), "cert_no": o.get("cert_no")} if isinstance(o, dict) else o
                         for o in officers] if isinstance(officers, list) else officers,
        }
    return body


def content_sha256(payload: dict) -> str:
    """The SHA-256 of the RFC 8785 bytes of :func:`signed_content`; "" when it has no such bytes."""
    from fieldapp.sync.signing import NotCanonicalizable, canonical_bytes

    try:
        return hashlib.sha256(canonical_bytes(signed_content(payload))).hexdigest()
    except (NotCanonicalizable, TypeError, ValueError):
        return ""


class _Cleaner:
    """The payload as the rules, the case page and the paper read it: strings where text belongs,
    lists of tables where lists belong; anything else is dropped and the record marked repaired (it
    then prints as a copy, never crashes a page)."""

    def __init__(self) -> None:
        self.repaired = False

    def text(self, value) -> str | None:
        if value is None or isinstance(value, str):
            return value
        self.repaired = True
        return None

    def table(self, value, keys: tuple[str, ...]) -> dict | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            self.repaired = True
            return None
        return {k: self.text(value.get(k)) for k in keys if value.get(k) is not None}

    def tables(self, value, keys: tuple[str, ...]) -> list[dict]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.repaired = True
            return []
        out = []
        for item in value:
            if isinstance(item, dict):
                out.append(self.table(item, keys))
            else:
                self.repaired = True
        return out


SUBJECT_KEYS = ("name", "id_no", "sex", "employer", "position", "phone", "address", "relation", "representative")


def normalised(payload) -> tuple[dict, bool]:
    """(the clean payload, whether anything had to be dropped to get it)."""
    c = _Cleaner()
    p = payload if isinstance(payload, dict) else {}
    if not isinstance(payload, dict):
        c.repaired = True
    clean = {k: c.text(p.get(k)) for k in ("form", "started_at", "ended_at", "place", "recorder", "content",
                                           "opinion", "activity_id", "case_id")}
    if clean["form"] not in builtin()[0]:
        c.repaired = True
        clean["form"] = None
    clean["subject"] = c.table(p.get("subject"), SUBJECT_KEYS) or {}
    clean["officers"] = c.tables(p.get("officers"), ("name", "cert_no"))
    notice = p.get("notice") if isinstance(p.get("notice"), dict) else {}
    if p.get("notice") is not None and not isinstance(p.get("notice"), dict):
        c.repaired = True
    recusal = c.text(notice.get("recusal"))
    clean["notice"] = {"credentials_shown": notice.get("credentials_shown") is True,
                       "recusal": recusal if recusal in RECUSALS else None}
    clean["qa"] = c.tables(p.get("qa"), ("q", "a"))
    signing = p.get("signing")
    if signing is not None and not isinstance(signing, dict):
        c.repaired = True
    signing = signing if isinstance(signing, dict) else {}
    party = c.table(signing.get("party"), ("outcome", "signature", "confirmation", "refused_reason")) or {}
    if party.get("outcome") not in OUTCOMES:
        party["outcome"] = None
    clean["signing"] = {"content_sha256": c.text(signing.get("content_sha256")), "party": party,
                        "witness": c.table(signing.get("witness"), ("name", "org", "id_no", "signature")),
                        "officers": c.tables(signing.get("officers"), ("name", "cert_no", "signature"))}
    clean["withdrawn"] = p.get("withdrawn") is True
    return clean, c.repaired


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def facts(payload: dict, present: set[str] | None = None, earlier: list[dict] | None = None) -> frozenset[str]:
    """The facts of ``payload`` the rules ask about. ``present``: the signature images actually
    held for this revision (None: not known, as on the phone — any named signature counts);
    ``earlier``: the record's earlier revisions' payloads, so a signature carried over onto text it
    was not given for is caught even when the hash was recomputed."""
    clean, repaired = normalised(payload)
    signing = clean["signing"]
    party, witness = signing["party"], signing["witness"] or {}

    def signed(entry: dict) -> bool:
        sig = entry.get("signature")
        return bool(sig) and (present is None or sig in present)

    signed_certs = {o.get("cert_no") for o in signing["officers"] if signed(o) and o.get("cert_no")}
    listed = [o.get("cert_no") for o in clean["officers"]]
    bound = bool(signing["content_sha256"]) and signing["content_sha256"] == content_sha256(payload)
    found = {
        "well_formed": not repaired,
        "content_matches_signatures": bound and not _carried_over(clean, earlier or []),
        "two_officers_signed": len({c for c in listed if c and c in signed_certs}) >= 2,
        "every_officer_signed": bool(listed) and all(c and c in signed_certs for c in listed),
        "credentials_shown": clean["notice"]["credentials_shown"],
        "recusal_recorded": clean["notice"]["recusal"] is not None,
        "content_present": bool((clean["content"] or "").strip()) if clean["form"] != "inquiry"
        else any((x.get("q") or "").strip() and (x.get("a") or "").strip() for x in clean["qa"]),
        "party_signature": signed(party),
        "refusal_reason": bool((party.get("refused_reason") or "").strip()),
        "witness_signature": signed(witness) and bool((witness.get("name") or "").strip()),
        "absence_allowed": bool(form(clean["form"])) and form(clean["form"]).absent_allowed,
        "never": False,
    }
    return frozenset(name for name, present_ in found.items() if present_)


def _carried_over(clean: dict, earlier: list[dict]) -> bool:
    """A signature image of an earlier revision reappears under other signed content."""
    mine = {e.get("signature") for e in _signatures(clean)} - {None}
    for previous in earlier:
        before, _ = normalised(previous)
        if mine & ({e.get("signature") for e in _signatures(before)} - {None}) and \
                before["signing"]["content_sha256"] != clean["signing"]["content_sha256"]:
            return True
    return False


def _signatures(clean: dict) -> list[dict]:
    signing = clean["signing"]
    return [signing["party"], *([signing["witness"]] if signing["witness"] else []), *signing["officers"]]


def assess(payload: dict, present: set[str] | None = None, earlier: list[dict] | None = None) -> Assessment:
    """Which rules ``payload`` misses, given the party's outcome on the signing screen."""
    outcome = normalised(payload)[0]["signing"]["party"]["outcome"]
    have = facts(payload, present, earlier)
    applies = ("any", outcome or "none")
    return Assessment(outcome=outcome,
                      problems=tuple(r for r in builtin()[1] if r.when in applies and r.needs not in have))
