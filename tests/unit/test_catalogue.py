"""The rules catalogue against the district regulation (arts. 2–25) and the national document forms.

These tests are the guard the requirements ask for: if a step that arts. 12, 19, 22 or 24 list goes
missing from the catalogue, or stops being flagged as needing audio/video, the suite fails.
"""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from fieldapp.rules import CatalogueError, StepType, load_builtin, parse, parse_step_type

SHARED = Path(__file__).parents[2].parent / "shared/regulation"
FORMS_FILE = SHARED / "law/samr-document-forms-2021.zh.txt"
REGULATION_FILE = SHARED / "full-process-recording-rules.zh.txt"

# 国市监法发〔2021〕42号: the 56 national form names (kept here so the test runs without the file).
NATIONAL_FORMS = (
    "案件来源登记表", "指定管辖通知书", "案件交办通知书", "案件移送函", "涉嫌犯罪案件移送书",
    "查封/扣押物品移送告知书", "立案/不予立案审批表", "行政处罚案件有关事项审批表", "现场笔录",
    "送达地址确认书", "证据提取单", "电子数据证据提取笔录", "询问通知书", "询问笔录",
    "限期提供材料通知书", "协助辨认/鉴别通知书", "协助调查函", "协助扣押通知书",
    "先行登记保存证据通知书", "解除先行登记保存证据通知书", "实施行政强制措施决定书",
    "延长行政强制措施期限决定书", "解除行政强制措施决定书", "场所/设施/财物清单", "封条",
    "实施行政强制措施场所/设施/财物委托保管书", "先行处置物品确认书", "先行处置物品公告", "抽样记录",
    "检测/检验/检疫/鉴定委托书", "检测/检验/检疫/鉴定期间告知书", "检测/检验/检疫/鉴定结果告知书",
    "责令改正通知书", "责令退款通知书", "案件调查终结报告", "案件审核/法制审核表", "行政处罚告知书",
    "陈述申辩笔录", "行政处罚听证通知书", "听证笔录", "听证报告", "行政处罚案件集体讨论记录",
    "行政处理决定审批表", "当场行政处罚决定书", "行政处罚决定书", "不予行政处罚决定书",
    "延期/分期缴纳罚款通知书", "行政处罚决定履行催告书", "强制执行申请书", "送达回证",
    "行政处罚文书送达公告", "涉案物品处理记录", "结案审批表", "卷宗封面", "卷内文件目录", "卷内备考表",
)

# Names the district regulation itself uses where no national form exists (arts. 11, 14, 16–18, 23).
DISTRICT_DOCUMENTS = {
    # art. 11: licensing
    "收件通知书", "缺件告知书", "受理通知书", "申请材料核实情况报告书", "审核表", "行政许可决定书",
    "证照复印件", "证照颁发及归档记录表", "申请人提供的申请材料",
    # art. 14: penalty investigation
    "勘验笔录", "鉴定结论", "检测检验报告", "调取或当事人提供的证据材料",
    # art. 16: the party's own application, and the notice of the result
    "听证申请书", "行政处理结果告知书",
    # art. 17: service
    "邮寄凭证", "邮寄回执", "公告报样", "网页截屏",
    # art. 18: execution
    "行政罚款收据", "实物罚没收据",
    # art. 23: inspection
    "当事人提供的证据材料",
}
# Named by national law in its current wording: 行政处罚法 (2021) art. 46 says 鉴定意见 where the
# district regulation (art. 14) still says 鉴定结论; the checklist uses the law's name.
LAW_DOCUMENTS = {"鉴定意见"}

# (kind, keyword that must appear in a step's label_zh, article that requires audio/video)
AV_REQUIRED_STEPS = [
    ("licensing", "检查", "art. 12"),
    ("licensing", "核查", "art. 12"),
    ("licensing", "听证", "art. 12"),
    ("penalty", "询问", "art. 19"),
    ("penalty", "调查", "art. 19"),
    ("penalty", "检查", "art. 19"),
    ("penalty", "抽样", "art. 19"),
    ("penalty", "先行登记保存", "art. 19"),
    ("penalty", "留置送达", "art. 19"),
    ("penalty", "听证", "art. 19"),
    ("penalty", "销毁", "art. 19"),
    ("coercion", "检查", "art. 22"),
    ("coercion", "调查", "art. 22"),
    ("coercion", "查封", "art. 22"),
    ("coercion", "扣押", "art. 22"),
    ("coercion", "解除", "art. 22"),
    ("coercion", "留置送达", "art. 22"),
    ("inspection", "双随机", "art. 24"),
    ("inspection", "突发", "art. 24"),
    ("inspection", "群体性", "art. 24"),
    ("inspection", "抽检", "art. 24"),
    ("inspection", "留置送达", "art. 24"),
]

MUST_BLOCK_ARCHIVING = {
    "av_missing", "av_footage_overdue", "continuous_gap", "interruption_unexplained", "service_by_leaving_incomplete",
    "service_by_leaving_unproven", "documents_incomplete", "document_required_not_applicable", "certificates_not_shown",
    "service_by_notice_unjustified",
}


@pytest.fixture(scope="module")
def cat():
    return load_builtin()


@pytest.fixture()
def raw():
    """The built-in catalogue as plain data, to be broken by one case at a time."""
    return copy.deepcopy(load_builtin().to_json())


@pytest.mark.parametrize(("kind", "keyword", "article"), AV_REQUIRED_STEPS)
def test_every_step_the_regulation_lists_requires_audio_video(cat, kind, keyword, article):
    matching = [s for s in cat.step_types if s.kind == kind and keyword in s.label_zh]
    assert matching, f"no {kind} step type with {keyword!r} in its label ({article})"
    flagged = [s for s in matching if s.av_required and s.av_article == article]
    assert flagged, (f"{kind} steps with {keyword!r} ({[s.id for s in matching]}) are not flagged "
                     f"av_required with av_article {article!r}")
    assert all(s.field for s in flagged), "steps that need audio/video must be offered on the phone"


def test_av_articles_belong_to_their_kind(cat):
    section = {"licensing": "art. 12", "penalty": "art. 19", "coercion": "art. 22", "inspection": "art. 24"}
    for step in cat.step_types:
        if step.av_required:
            assert step.av_article == section[step.kind], step.id


def test_kinds_and_stages(cat):
    assert [k.id for k in cat.kinds] == ["licensing", "penalty", "coercion", "inspection"]
    assert [k.label_zh for k in cat.kinds] == ["行政许可", "行政处罚", "行政强制", "行政检查"]
    assert [k.article for k in cat.kinds] == ["arts. 10–12", "arts. 13–19", "arts. 20–22", "arts. 23–24"]
    assert [(s.id, s.label_zh) for s in cat.stages] == [
        ("start", "程序启动"), ("investigation", "调查取证"), ("decision", "审查决定"),
        ("service", "送达执行"), ("archive", "归档管理"),
    ]
    assert all(s.article == "art. 3" for s in cat.stages)
    assert cat.version == 6 and isinstance(cat.version, int)
    assert cat.title_zh == "临淄区市场监督管理局行政执法全过程记录规定"


def test_step_types_are_well_formed(cat):
    kinds = {k.id for k in cat.kinds}
    stages = {s.id for s in cat.stages}
    ids = [s.id for s in cat.step_types]
    assert len(ids) == len(set(ids))
    for step in cat.step_types:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", step.id)
        assert step.kind in kinds and step.stage in stages
        assert step.label_zh and step.label_en and step.articles
        assert step.unit_code is None
        if step.av_required:
            assert step.av_article in step.articles
    for kind in kinds:
        assert any(s.field for s in cat.step_types_for(kind)), kind


def test_every_document_is_a_national_form_or_named_by_the_regulation(cat):
    allowed = set(NATIONAL_FORMS) | DISTRICT_DOCUMENTS | LAW_DOCUMENTS
    unknown = {(s.id, d) for s in cat.step_types for d in s.documents if d not in allowed}
    assert not unknown, f"document names that are neither national forms nor in the regulation: {unknown}"


def test_national_form_list_matches_the_shared_file():
    assert len(NATIONAL_FORMS) == len(set(NATIONAL_FORMS)) == 56
    if not FORMS_FILE.exists():
        pytest.skip(f"{FORMS_FILE} not present beside the project")
    body = FORMS_FILE.read_text(encoding="utf-8").split("\n", 1)[1]
    numbered = re.findall(r"(\d+) (\S+)", body)
    assert [int(n) for n, _ in numbered] == list(range(1, 57))
    assert tuple(name for _, name in numbered) == NATIONAL_FORMS


def test_district_document_names_occur_in_the_regulation():
    if not REGULATION_FILE.exists():
        pytest.skip(f"{REGULATION_FILE} not present beside the project")
    text = REGULATION_FILE.read_text(encoding="utf-8")
    assert not {name for name in DISTRICT_DOCUMENTS if name not in text}
    assert not DISTRICT_DOCUMENTS & set(NATIONAL_FORMS)


def test_documents_each_kind_must_produce_are_catalogued(cat):
    expected = {
        "licensing": {"收件通知书", "缺件告知书", "受理通知书", "申请材料核实情况报告书", "审核表",
                      "行政许可决定书", "证照复印件", "证照颁发及归档记录表"},
        "penalty": {"现场笔录", "询问笔录", "勘验笔录", "抽样记录", "先行登记保存证据通知书", "协助调查函",
                    "立案/不予立案审批表", "案件调查终结报告", "案件审核/法制审核表", "行政处罚告知书",
                    "陈述申辩笔录", "听证笔录", "送达回证", "涉案物品处理记录", "强制执行申请书"},
        "coercion": {"现场笔录", "实施行政强制措施决定书", "场所/设施/财物清单", "封条",
                     "检测/检验/检疫/鉴定期间告知书", "解除行政强制措施决定书", "行政处罚案件有关事项审批表"},
        "inspection": {"现场笔录", "询问笔录", "抽样记录", "当事人提供的证据材料", "送达回证"},
    }
    for kind, documents in expected.items():
        have = {d for s in cat.step_types_for(kind) for d in s.documents}
        assert documents <= have, (kind, documents - have)


def test_district_articles_are_covered(cat):
    assert set(range(9, 26)) | {2, 3} <= cat.district_articles()


def test_case_flags_reasons_and_relations(cat):
    assert [f.id for f in cat.case_flags if f.continuous] == ["life_health", "major_property", "emergency", "obstruction"]
    assert all(f.article == "art. 9" and f.label_zh for f in cat.case_flags if f.continuous)
    assert cat.case_flags[-1].id == "serious" and cat.case_flags[-1].article == "行政处罚法 art. 57"
    assert [r.id for r in cat.interruption_reasons] == [
        "equipment_fault", "battery", "weather", "obstruction", "other"]
    assert [r.id for r in cat.interruption_reasons if r.sets_continuous] == ["obstruction"]
    assert [s.id for s in cat.step_types if s.sets_continuous] == ["inspection_emergency"]
    assert [s.id for s in cat.step_types if s.ends_act] == [
        "licensing_certificate_delivery", "penalty_case_closing", "coercion_lift", "coercion_disposal",
        "inspection_closing"]
    assert [r.id for r in cat.service_relations] == ["self", "adult_family_member", "company_receiving_staff"]
    assert all(r.article.startswith("民事诉讼法 art. 89") for r in cat.service_relations)


def test_measures_are_recorded_inside_penalty_and_inspection_cases(cat):
    """Art. 20 para. 2: coercion records go into the penalty file; 查封/扣押 are taken inside a
    penalty or inspection case, not only in cases of their own kind."""
    assert cat.kind("penalty").measures == ("coercion",) and cat.kind("inspection").measures == ("coercion",)
    assert cat.kind("coercion").measures == () and cat.kind("licensing").measures == ()
    for kind in ("penalty", "inspection"):
        assert "coercion_seal_seize" in {s.id for s in cat.step_types_for(kind)}
    assert "coercion_seal_seize" not in {s.id for s in cat.step_types_for("licensing")}


def test_findings(cat):
    expected = {
        "av_missing", "av_footage_pending", "av_footage_overdue", "continuous_gap", "interruption_unexplained",
        "cannot_continue_unreported", "officers_fewer_than_two", "certificates_not_shown",
        "service_by_leaving_incomplete", "service_by_leaving_unproven", "av_upload_late", "filing_late",
        "media_unlabelled", "documents_incomplete", "document_required_not_applicable",
        "evidence_preservation_late", "seizure_term_exceeded", "decision_service_late", "emergency_report_missing",
        "penalty_decision_late", "service_by_notice_unjustified", "originals_missing", "activity_not_approved", "act_end_unknown",
        "footage_through_interruption",
    }
    assert {f.id for f in cat.findings} == expected
    for finding in cat.findings:
        assert finding.article and finding.severity in {"error", "warning"}
        assert isinstance(finding.blocks_archiving, bool)
    assert {f.id for f in cat.findings if f.blocks_archiving} >= MUST_BLOCK_ARCHIVING
    assert cat.finding("av_missing").article == "arts. 12, 19, 22, 24"
    assert "行政强制法 art. 18(二)" in cat.finding("officers_fewer_than_two").article
    assert cat.finding("certificates_not_shown").article == "行政处罚法 art. 55; 行政强制法 art. 18(三)"
    assert cat.finding("certificates_not_shown").blocks_archiving
    assert {f.id for f in cat.findings if f.exception_allowed} == {
        "av_missing", "av_footage_overdue", "document_required_not_applicable"}
    assert cat.finding("filing_late").article == "art. 25"


def test_lookups_and_order(cat):
    assert cat.step_type("penalty_service_by_leaving").av_article == "art. 19"
    with pytest.raises(KeyError):
        cat.step_type("nope")
    with pytest.raises(KeyError):
        cat.finding("nope")
    with pytest.raises(KeyError):
        cat.step_types_for("taxation")
    stage_index = {s.id: i for i, s in enumerate(cat.stages)}
    for kind in cat.kinds:
        steps = cat.step_types_for(kind.id)
        keys = [(not s.field, stage_index[s.stage]) for s in steps]
        assert keys == sorted(keys)
        assert {s.id for s in steps} == {s.id for s in cat.step_types if s.kind in (kind.id, *kind.measures)}


def _set(path, value):
    def mutate(data):
        target = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return mutate


def _delete(path):
    def mutate(data):
        target = data
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
    return mutate


def _append(section, index):
    def mutate(data):
        data[section].append(copy.deepcopy(data[section][index]))
    return mutate


BAD_CASES = [
    ("missing version", _delete(["version"]), "version"),
    ("float version", _set(["version"], 1.5), "version"),
    ("bool version", _set(["version"], True), "version"),
    ("empty title", _set(["meta", "title"], " "), "title"),
    ("unknown top key", _set(["extra"], 1), "unknown key"),
    ("unknown kind", _set(["step_types", 0, "kind"], "taxation"), "unknown kind"),
    ("unknown stage", _set(["step_types", 0, "stage"], "appeal"), "unknown stage"),
    ("duplicate step id", _append("step_types", 0), "duplicate"),
    ("duplicate kind", _append("kinds", 0), "duplicate"),
    ("duplicate stage", _append("stages", 0), "duplicate"),
    ("av without article", _set(["step_types", 2, "av_article"], None), "av_article"),
    ("av article not cited", _set(["step_types", 2, "av_article"], "art. 19"), "must also be in articles"),
    ("av article without av", _set(["step_types", 0, "av_article"], "art. 11"), "av_required is false"),
    ("empty label_zh", _set(["step_types", 0, "label_zh"], ""), "label_zh"),
    ("empty label_en", _set(["kinds", 0, "label_en"], ""), "label_en"),
    ("non-bool av_required", _set(["step_types", 0, "av_required"], "yes"), "av_required"),
    ("non-bool field", _set(["step_types", 0, "field"], 1), "field"),
    ("bad id", _set(["step_types", 0, "id"], "Licensing-Receipt"), "snake_case"),
    ("misspelt key", _set(["step_types", 0, "av_requried"], True), "unknown key"),
    ("missing documents", _delete(["step_types", 0, "documents"]), "documents"),
    ("documents not a list", _set(["step_types", 0, "documents"], "现场笔录"), "documents"),
    ("no articles", _set(["step_types", 0, "articles"], []), "articles"),
    ("bad citation", _set(["step_types", 0, "articles"], ["Article 10"]), "citation"),
    ("unknown severity", _set(["findings", 0, "severity"], "fatal"), "severity"),
    ("blocks_archiving not bool", _set(["findings", 0, "blocks_archiving"], "no"), "blocks_archiving"),
    ("finding without article", _delete(["findings", 0, "article"]), "article"),
    ("empty findings", _set(["findings"], []), "findings"),
    ("stages not a list", _set(["stages"], {"id": "start"}), "stages"),
    ("entry not a table", _set(["kinds", 0], "licensing"), "expected a table"),
]


@pytest.mark.parametrize(("mutate", "message"), [c[1:] for c in BAD_CASES], ids=[c[0] for c in BAD_CASES])
def test_parse_rejects_bad_data(raw, mutate, message):
    mutate(raw)
    with pytest.raises(CatalogueError, match=re.escape(message)):
        parse(raw)


def test_parse_accepts_the_builtin_data(raw):
    assert parse(raw) == load_builtin()


def _unit_step(**overrides):
    values = dict(
        id="lz_zf1_night_market_check", kind="inspection", stage="investigation",
        label_zh="夜市专项现场检查", label_en="Night-market on-site inspection", av_required=True,
        av_article="art. 24", articles=["art. 24"], documents=["现场笔录"], field=True, unit_code="LZ-ZF1",
    )
    values.update(overrides)
    return StepType(**values)


def test_unit_step_types_are_added(cat):
    extended = cat.with_extra_step_types([_unit_step()])
    added = extended.step_type("lz_zf1_night_market_check")
    assert added.unit_code == "LZ-ZF1" and added.articles == ("art. 24",)
    assert added in extended.step_types_for("inspection")
    assert len(extended.step_types) == len(cat.step_types) + 1
    assert extended.digest() != cat.digest()
    with pytest.raises(KeyError):
        cat.step_type("lz_zf1_night_market_check")  # the built-in catalogue is untouched


@pytest.mark.parametrize(("step", "message"), [
    (_unit_step(id="penalty_sampling"), "duplicate"),
    (_unit_step(unit_code=None), "unit_code"),
    (_unit_step(kind="taxation"), "unknown kind"),
    (_unit_step(av_article=None), "av_article"),
    (_unit_step(label_zh=""), "label_zh"),
])
def test_unit_step_types_are_validated(cat, step, message):
    with pytest.raises(CatalogueError, match=re.escape(message)):
        cat.with_extra_step_types([step])


def test_parse_step_type_reads_a_unit_definition(cat):
    definition = {k: v for k, v in cat.to_json()["step_types"][0].items() if k != "unit_code"}
    definition.update(id="lz_zf1_extra", av_article=None)
    step = parse_step_type(definition, unit_code="LZ-ZF1")
    assert step.unit_code == "LZ-ZF1" and isinstance(step.articles, tuple)
    assert cat.with_extra_step_types([step]).step_type("lz_zf1_extra") == step
    with pytest.raises(CatalogueError, match="unit_code"):
        cat.with_extra_step_types([parse_step_type(definition)])
    for broken, message in [({**definition, "av_required": True}, "av_article"),
                            ({**definition, "articles": ["第十二条"]}, "citation"),
                            ({**definition, "colour": "red"}, "unknown key")]:
        with pytest.raises(CatalogueError, match=message):
            parse_step_type(broken, unit_code="LZ-ZF1")


def test_unit_step_ids_must_not_collide_with_each_other(cat):
    with pytest.raises(CatalogueError, match="duplicate"):
        cat.with_extra_step_types([_unit_step(), _unit_step(label_zh="另一个")])


def _no_floats(value, path="$"):
    assert not isinstance(value, float), path
    if isinstance(value, dict):
        for key, item in value.items():
            assert isinstance(key, str), path
            _no_floats(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _no_floats(item, f"{path}[{i}]")
    else:
        assert value is None or isinstance(value, (str, int, bool)), (path, value)


def test_to_json_round_trips_without_floats(cat):
    extended = cat.with_extra_step_types([_unit_step()])
    data = extended.to_json()
    assert data["version"] == 6
    text = json.dumps(data, ensure_ascii=False, allow_nan=False)
    back = json.loads(text)
    assert back == data
    _no_floats(back)
    assert parse(back) == extended
    steps = {s["id"]: s for s in back["step_types"]}
    assert steps["lz_zf1_night_market_check"]["unit_code"] == "LZ-ZF1"
    assert steps["penalty_hearing"]["av_article"] == "art. 19"
