"""Labels the review pages show, in the reader's language."""
from __future__ import annotations

from flask_babel import get_locale
from flask_babel import lazy_gettext as _l

from ..i18n import local_time, parse_when
from ..media.pipeline import FLAG_MESSAGES
from ..rules.catalogue import format_citation, format_citations_in

RECORD_TYPES = {
    "case": _l("Case"), "activity": _l("On-site activity"), "step": _l("Step"),
    "interruption": _l("Interruption of recording"), "service": _l("Service by leaving"),
    "camera_use": _l("Body camera hand-out"), "onsite_record": _l("On-site record"),
}
EXTRA_FLAGS = {
    "pipeline_failed": ("服务器处理该文件时出错；原件已按原样保存并已核验。",
                        "The server failed to process this file; the original is stored as received and verified."),
}


REVIEW_ACTIONS = {
    "awaiting": _l("Awaiting review"), "approved": _l("Approved"), "returned": _l("Returned to the officer"),
    "reopened": _l("Re-opened by a new revision"),
}
# Why review re-opened (workflow._reopen_or_queue stores the code as the event's comment).
REOPEN_REASONS = {
    "answered": _l("The officer answered the return; back in the queue"),
    "changed_after_approval": _l("Changed after approval; back in the queue"),
}
# Reasons the phone gives for a new revision by code; any other reason is the officer's own words.
REVISION_REASONS = {
    "resumed": _l("recording resumed"), "cannot_continue": _l("recording cannot continue"),
    "written_explanation": _l("written explanation added"),
    "conflict_resolved_keep_mine": _l("conflict resolved, the phone's version kept"),
}
MEDIA_KINDS = {"image": _l("photo"), "video": _l("video"), "audio": _l("audio recording")}
MIME_NAMES = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WebP", "image/gif": "GIF",
              "video/mp4": "MP4", "audio/mp4": "M4A", "video/quicktime": "MOV"}


def history_label(event) -> str:
    """One line of review history: the action, and for a re-opening why, in words."""
    if event.action == "reopened" and event.comment in REOPEN_REASONS:
        return str(REOPEN_REASONS[event.comment])
    return review_action_label(event.action)


def revision_reason_label(reason: str | None) -> str:
    return str(REVISION_REASONS.get(reason, reason)) if reason else ""


def media_kind_label(kind: str | None) -> str:
    return str(MEDIA_KINDS.get(kind or "", _l("file")))


def mime_label(mime: str | None) -> str:
    """A file's type as a reader names it: "JPEG 照片", not "image/jpeg"."""
    if not mime:
        return ""
    kind = mime.split("/")[0]
    return f"{MIME_NAMES.get(mime, '')} {media_kind_label(kind)}".strip()


def cite(text: str | None) -> str:
    """A catalogue citation in the reader's language (第十九条 / art. 19)."""
    return format_citation(text, zh=_zh())


def _zh() -> bool:
    return get_locale().language == "zh"


def review_action_label(action: str) -> str:
    return str(REVIEW_ACTIONS.get(action, action))


def step_label(step_type: str | None) -> str:
    st = _step_types().get(step_type)
    if st is None:
        return step_type or ""
    return st["label_zh"] if _zh() else st["label_en"]


def _step_types() -> dict[str, dict]:
    """The catalogue's step types, read once per request (a page labels a hundred findings)."""
    from flask import g

    from ..compliance.engine import catalogue_content

    if "step_types" not in g:
        g.step_types = {st["id"]: st for st in catalogue_content().get("step_types", [])}
    return g.step_types


def _catalogue_section(name: str) -> dict[str, dict]:
    from flask import g

    from ..compliance.engine import catalogue_content

    key = f"catalogue_{name}"
    if key not in g:
        setattr(g, key, {item["id"]: item for item in catalogue_content().get(name, [])})
    return getattr(g, key)


def _label(section: str, ident: str | None) -> str:
    item = _catalogue_section(section).get(ident or "")
    if item is None:
        return ident or ""
    return item["label_zh"] if _zh() else item["label_en"]


def kind_label(kind: str | None) -> str:
    return _label("kinds", kind)


def stage_label(stage: str | None) -> str:
    return _label("stages", stage)


def finding_title(rule_id: str) -> str:
    return _label("findings", rule_id)


def case_flag_label(flag: str | None) -> str:
    """A case flag (a circumstance that makes continuous recording mandatory) in words."""
    return _label("case_flags", flag)


def case_flag_article(flag: str | None) -> str:
    return cite(_catalogue_section("case_flags").get(flag or "", {}).get("article"))


def interruption_reason_label(reason: str | None) -> str:
    return _label("interruption_reasons", reason)


def relation_label(relation: str | None) -> str:
    return _label("service_relations", relation)


def device_time_note(revision) -> str:
    """The phone's own time of a revision, only where its clock was off by more than the tolerance
    (settings.clock_skew_seconds): otherwise the server's time says it all."""
    from flask import current_app

    skew = revision.clock_skew_seconds
    tolerance = current_app.config["FIELDAPP_SETTINGS"].clock_skew_seconds
    if not revision.clock_skew_flag and (skew is None or abs(skew) <= tolerance):
        return ""
    return local_time(parse_when(revision.device_time_parsed) or revision.device_time)


def deadline_label(rule_id: str) -> str:
    from ..compliance import deadline_source

    return format_citations_in(deadline_source.label(rule_id, zh=_zh()), zh=_zh())


def calendar_warning(code: str) -> str:
    from ..compliance import deadline_source

    return deadline_source.warning_text(code, zh=_zh())


DETAIL_KEYS = {
    "camera_id": _l("body camera"), "gap_seconds": _l("unexplained seconds"),
    "tolerance_seconds": _l("tolerance (s)"), "missing": _l("missing"), "officers": _l("officers"),
    "due_at": _l("due"), "late": _l("files late"), "stage": _l("stage"), "step_type": _l("step"),
    "av_article": _l("required by"), "resumed": _l("resumed"), "counted_from": _l("counted from"),
    "warnings": _l("calendar"),
    "answer": _l("audio/video"), "reason": _l("reason given"), "not_applicable": _l("marked not applicable"),
    "not_enrolled": _l("without an enrolled certificate"), "witnesses": _l("witnesses"),
    "qualified_confirmed": _l("witnesses of the grassroots organisation or employer who confirmed"),
    "officers_signed": _l("officers signed"), "photos": _l("photos or video"), "rule": _l("period"),
    "met_at": _l("met"), "testing_periods_not_counted": _l("testing periods not counted (party not told in writing)"),
    "extension_not_counted": _l("extension not counted"),
    "files": _l("files whose original is not yet stored"),
    "other_service_tried": _l("another way of service tried first"),
    "source": _l("measured from"), "footage": _l("footage"), "gaps": _l("gaps"),
    "footage_seconds": _l("seconds of footage inside the declared stop"),
}
DETAIL_VALUES = {
    "report_to_head": _l("report to the unit head"), "written_explanation": _l("written explanation"),
    "refusal_reason": _l("reason for refusal"), "date": _l("date"),
    "witnesses_or_photo": _l("witnesses, or a photo/video of the document left"),
    "party": _l("party"), "case_number": _l("case number"), "activity_end": _l("the end of the activity"),
    # what the officer answered to "recorded on audio/video?" (checks.av_state)
    "no_answer": _l("not answered"), "clip_missing": _l("no clip attached"),
    "camera_not_named": _l("body camera not named"), "not_recorded": _l("not recorded"),
    "footage_does_not_cover": _l("the body camera's footage does not show this moment"),
    # where a continuous-recording gap was measured (checks.continuous_gap)
    "declared": _l("the times the officer declared"), "not_ingested": _l("not yet ingested"),
    "footage": _l("body-camera footage"), "partial": _l("part of the footage is in; not yet this moment"),
    # what a 留置送达 record lacks (checks.service_by_leaving_incomplete)
    "who_refused": _l("who refused"), "relation": _l("their relation to the party"),
    "refusal_words_or_acts": _l("the refusal's words or acts"), "place": _l("place"),
    "documents_left": _l("the documents left"),
    # why an extension of a seizure does not count (clocks._extension_counts)
    "approved_after_expiry": _l("approved after the term ran out"),
    "not_notified_in_writing": _l("the party was not told in writing"),
    # why a document was served by public notice (民事诉讼法 art. 95)
    "not_given": _l("not given"), "whereabouts_unknown": _l("the party cannot be found"),
    "other_methods_failed": _l("the other ways of service failed"),
}


def _detail_value(key: str, value) -> str:
    if isinstance(value, list):
        return "、".join(_detail_value(key, v) for v in value)
    if isinstance(value, dict) and "name" in value:  # a document with the officer's reason
        reason = value.get("reason")
        return f"{value['name']}（{reason}）" if reason else str(value["name"])
    if isinstance(value, bool):
        return str(_l("yes") if value else _l("no"))
    if key == "reason":  # the officer's own words
        return str(value)
    if key == "step_type":
        return step_label(value)
    if key == "warnings":
        return calendar_warning(value)
    if key in ("due_at", "met_at") and isinstance(value, str):
        return local_time(value)
    if key == "rule" and isinstance(value, str):
        return deadline_label(value)
    if key == "extension_not_counted" and isinstance(value, str):
        return "、".join(_detail_value(key, v) for v in value.split(",") if v)
    if key == "av_article":
        return cite(value)
    if key == "stage":
        return stage_label(value)
    return str(DETAIL_VALUES.get(value, value)) if isinstance(value, str) else str(value)


def deadline_status(deadline, now) -> str | None:
    """"overdue", "due_today" (its day in Asia/Shanghai), "due_soon" (within the configured
    working days before its day), or None; a met deadline has none."""
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from ..compliance import deadline_source

    if deadline.met_at is not None:
        return None
    if now > deadline.due_at:
        return "overdue"
    shanghai = ZoneInfo("Asia/Shanghai")
    last_day = (deadline.due_at.astimezone(shanghai) - timedelta(microseconds=1)).date()
    if now.astimezone(shanghai).date() == last_day:
        return "due_today"
    return "due_soon" if now >= deadline_source.warn_from(deadline.due_at) else None


DEADLINE_STATUS = {"overdue": _l("overdue"), "due_today": _l("due today"), "due_soon": _l("due soon")}


def deadline_status_label(status: str | None) -> str:
    return str(DEADLINE_STATUS[status]) if status else ""


def deemed_served(payload: dict):
    """民事诉讼法 art. 95: a document served by public notice counts as served 30 days after it was
    published; None for any other step."""
    from datetime import timedelta

    if payload.get("step_type") != "penalty_service_by_notice":
        return None
    published = parse_when(payload.get("at"))
    return published + timedelta(days=30) if published else None


def av_answer_label(payload: dict) -> str:
    """How a step or 留置送达 answered "recorded on audio/video?" (decision record 010), older
    phones' 是/否 included; "" when it was not asked."""
    answer = payload.get("av")
    if answer == "clip":
        return str(_l("audio/video: a clip is attached"))
    if answer == "body_camera" or payload.get("av_recorded") is True:
        camera = payload.get("av_camera_id")
        return str(_l("audio/video: on body camera")) + (f" {camera}" if camera else "")
    if answer == "not_recorded" or payload.get("av_recorded") is False:
        reason = payload.get("av_reason")
        return str(_l("not recorded on audio/video")) + ((("：" if _zh() else ": ") + reason) if reason else "")
    return ""


def finding_detail(detail: dict) -> list[str]:
    """A finding's detail as short phrases in the reader's language."""
    return [f"{DETAIL_KEYS.get(k, k)}: {_detail_value(k, v)}" for k, v in (detail or {}).items()
            if v not in (None, [], "")]


def record_type_label(record_type: str) -> str:
    return str(RECORD_TYPES.get(record_type, record_type))


def onsite_record_signing(head) -> dict:
    """An on-site record's title (现场笔录 / 询问笔录) and whether its head revision is the signed 笔录
    as paper would print it (signature images received, none carried over from earlier content),
    with what it misses in the reader's language, each with its article."""
    from sqlalchemy import select

    from .. import db
    from ..documents.sheets import earlier_payloads
    from ..models import Media
    from ..rules import onsite_records

    payload = head.payload if isinstance(head.payload, dict) else {}
    signing = onsite_records.normalised(payload)[0]["signing"]
    named = {e.get("signature") for e in (signing["party"], signing["witness"] or {}, *signing["officers"])} - {None}
    own = {m.get("hash") for m in head.media or [] if isinstance(m, dict) and m.get("alg") == "sha-256"}
    held = set(db.session().execute(select(Media.hash).where(
        Media.alg == "sha-256", Media.hash.in_(named & own), Media.kind == "image",
        Media.original_at.is_not(None))).scalars()) if named & own else set()
    assessment = onsite_records.assess(payload, present=held, earlier=earlier_payloads(head))
    form = onsite_records.form(onsite_records.normalised(payload)[0]["form"])
    separator = "；" if _zh() else "; "
    clean = onsite_records.normalised(payload)[0]
    return {"title": form.title if form else str(_l("On-site record")), "complete": assessment.signed_original,
            "subject": clean["subject"].get("name") or "", "started_at": clean["started_at"],
            "outcome": assessment.outcome,
            "problems": separator.join(f"{r.zh if _zh() else r.en}（{format_citations_in(r.article, zh=_zh())}）"
                                       for r in assessment.problems)}


def media_flag_label(code: str) -> str:
    zh, en = FLAG_MESSAGES.get(code) or EXTRA_FLAGS.get(code) or (code, code)
    return zh if _zh() else en


def init_app(app) -> None:
    # Globals, not a context processor: the pages' macros are imported, and imported macros see
    # the environment's globals only.
    from .roles import REVIEWERS

    app.jinja_env.globals.update(
        is_reviewer=lambda user: bool(user.roles & frozenset(REVIEWERS)), record_type_label=record_type_label,
        media_flag_label=media_flag_label, review_action_label=review_action_label, step_label=step_label,
        deadline_label=deadline_label, calendar_warning=calendar_warning, finding_detail=finding_detail,
        av_answer_label=av_answer_label, deemed_served=deemed_served, deadline_status=deadline_status, deadline_status_label=deadline_status_label,
        cite=cite, kind_label=kind_label, stage_label=stage_label, finding_title=finding_title,
        history_label=history_label, revision_reason_label=revision_reason_label, media_kind_label=media_kind_label,
        mime_label=mime_label, interruption_reason_label=interruption_reason_label, relation_label=relation_label,
        device_time_note=device_time_note, case_flag_label=case_flag_label, case_flag_article=case_flag_article,
        onsite_record_signing=onsite_record_signing)
