"""现场笔录 and 询问笔录 as printed: what was signed on the phone is on the page, the signatures are drawn
(the party's at the foot of every page), and a record that is not the signed 笔录 prints as a copy
naming what is missing, with its article."""
from __future__ import annotations

import copy
import hashlib
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from fieldapp.documents.onsite_record import OnsiteRecordDoc, onsite_record_pdf
from fieldapp.rules import onsite_records as rules
from tests.conftest import skip_or_fail
from tests.unit.test_service_receipt import pages_text, qr_codes, render, scribble, squeeze

CODE = "00000000000000000000000000000001-0123456789abcdef"
VERIFY_URL = f"https://zfjl.linzi.gov.cn/verify/{CODE}"
SIG = scribble()
SIG_HASH = hashlib.sha256(SIG).hexdigest()
CONTENT = "经现场检查，当事人店内冷柜中摆放超过保质期的酸奶12盒（生产日期2026年1月2日），标价出售。"


def scene(outcome: str = "signed", content: str = CONTENT) -> dict:
    payload = {
        "form": "scene", "started_at": "2026-03-04T01:00:00Z", "ended_at": "2026-03-04T01:40:00Z",
        "place": "临淄区齐都镇桓公路88号", "subject": {"name": "淄博齐都食品有限公司", "id_no": "91370305MA3C5XKX1Q",
                                               "representative": "王建国", "phone": "13905331234"},
        "officers": [{"name": "张伟", "cert_no": "37030300001"}, {"name": "李秀英", "cert_no": "37030300002"}],
        "recorder": "李秀英", "notice": {"credentials_shown": True, "recusal": "not_requested"},
        "content": content, "opinion": "对检查情况无异议。",
    }
    payload["signing"] = {
        "party": {"outcome": outcome, "signature": SIG_HASH if outcome == "signed" else None,
                  "refused_reason": "当事人称不认可，拒绝签名" if outcome == "refused" else None},
        "witness": {"name": "刘芳", "org": "桓公路社区居委会工作人员", "signature": SIG_HASH} if outcome != "signed" else None,
        "officers": [{"name": "张伟", "cert_no": "37030300001", "signature": SIG_HASH},
                     {"name": "李秀英", "cert_no": "37030300002", "signature": SIG_HASH}]}
    payload["signing"]["content_sha256"] = rules.content_sha256(payload)
    return payload


def inquiry() -> dict:
    payload = {
        "form": "inquiry", "started_at": "2026-03-05T06:00:00Z", "ended_at": "2026-03-05T06:30:00Z",
        "place": "临淄区市场监督管理局询问室",
        "subject": {"name": "王建国", "sex": "male", "id_no": "370305198001011234", "employer": "淄博齐都食品有限公司",
                    "position": "经理", "relation": "当事人的法定代表人"},
        "officers": [{"name": "张伟", "cert_no": "37030300001"}, {"name": "李秀英", "cert_no": "37030300002"}],
        "recorder": "李秀英", "notice": {"credentials_shown": True, "recusal": "not_requested"},
        "qa": [{"q": "过期酸奶是从哪里进的货？", "a": "从临淄区某批发市场进的货，有进货单。"},
               {"q": "共销售了多少？", "a": "大约卖出去了3盒。"}],
    }
    payload["signing"] = {"party": {"outcome": "signed", "signature": SIG_HASH,
                                    "confirmation": "以上笔录我已看过，与我所说的相符。"},
                          "witness": None,
                          "officers": [{"name": "张伟", "cert_no": "37030300001", "signature": SIG_HASH},
                                       {"name": "李秀英", "cert_no": "37030300002", "signature": SIG_HASH}]}
    payload["signing"]["content_sha256"] = rules.content_sha256(payload)
    return payload


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    for tool in ("pdftotext", "pdftoppm", "zbarimg"):
        if shutil.which(tool) is None:
            skip_or_fail(f"{tool} not installed (Debian: poppler-utils, zbar-tools)")
    return tmp_path_factory.mktemp("onsite")


def write(folder: Path, name: str, payload: dict, signatures: dict | None = None) -> Path:
    path = folder / f"{name}.pdf"
    path.write_bytes(onsite_record_pdf(OnsiteRecordDoc(
        case_number="临市监罚〔2026〕0127号", party="淄博齐都食品有限公司", payload=payload, verify_url=VERIFY_URL,
        code=CODE, signatures={SIG_HASH: SIG} if signatures is None else signatures)))
    return path


def test_a_signed_scene_record_prints_what_was_signed_and_is_no_copy(out):
    path = write(out, "scene", scene())
    text = squeeze("".join(pages_text(path)))
    for fact in ("现场笔录", "淄博齐都食品有限公司", "91370305MA3C5XKX1Q", "王建国", "37030300001", "37030300002",
                 "临淄区齐都镇桓公路88号", squeeze(CONTENT), "对检查情况无异议", "已向你出示执法证件", "不申请回避",
                 "2026年3月4日9时00分至2026年3月4日9时40分", "以上笔录我已看过，与现场情况相符", "当事人签名"):
        assert squeeze(fact) in text, fact
    assert "副本" not in text


def test_an_inquiry_record_prints_each_question_and_answer(out):
    text = squeeze("".join(pages_text(write(out, "inquiry", inquiry()))))
    for fact in ("询问笔录", "被询问人", "王建国", "男", "370305198001011234", "经理", "询问室",
                 "问：过期酸奶是从哪里进的货？", "答：从临淄区某批发市场进的货，有进货单。", "问：共销售了多少？",
                 "以上笔录我已看过，与我所说的相符", "被询问人签名"):
        assert squeeze(fact) in text, fact
    assert "副本" not in text


def image_count(path: Path) -> int:
    listing = subprocess.run(["pdfimages", "-list", str(path)], capture_output=True, text=True, check=True).stdout
    return len(listing.splitlines()) - 2


def test_the_signatures_are_drawn_and_without_their_images_it_is_a_copy(out):
    drawn = write(out, "drawn", scene())
    # the party in the body and at the foot of each page, and two officers
    assert image_count(drawn) >= 4
    assert "副本" not in "".join(pages_text(drawn))
    undrawn = write(out, "undrawn", scene(), signatures={})
    assert image_count(undrawn) == 0
    text = squeeze("".join(pages_text(undrawn)))
    assert "副本" in text and "当事人（被询问人）签名缺失" in text and "已签名，本件未附签名图像" in text


def test_a_long_record_carries_the_party_signature_and_the_qr_code_on_every_page(out):
    long_text = "\n".join(f"第{n}项：货架第{n}层摆放商品若干，逐一核对标签与进货票据，未见异常。" for n in range(1, 90))
    path = write(out, "long", scene(content=long_text))
    pages = render(path, 100)
    assert len(pages) >= 3
    for page in pages:
        assert qr_codes(page) == [VERIFY_URL]
    texts = pages_text(path)
    for number, text in enumerate(texts, start=1):
        assert "当事人签名" in squeeze(text) and f"第{number}页共{len(texts)}页" in squeeze(text)
    # the foot's signature is drawn on each page
    listing = subprocess.run(["pdfimages", "-list", str(path)], capture_output=True, text=True, check=True).stdout
    pages_with_images = {int(line.split()[0]) for line in listing.splitlines()[2:]}
    assert pages_with_images == set(range(1, len(pages) + 1))


@pytest.mark.parametrize("outcome,expected", [("refused", "拒绝签名"), ("absent", "当事人不到场")])
def test_refusal_and_absence_print_as_the_signed_record_with_the_witness(out, outcome, expected):
    text = squeeze("".join(pages_text(write(out, outcome, scene(outcome)))))
    assert expected in text and "刘芳" in text and "见证人签名" in text
    assert "副本" not in text


def test_a_record_changed_after_signing_prints_as_a_copy_saying_why(out):
    changed = scene()
    changed["content"] = CONTENT + "另查明当事人还销售了其他过期食品。"
    path = write(out, "changed", changed)
    texts = pages_text(path)
    for text in texts:
        assert "副本" in squeeze(text)
    whole = squeeze("".join(texts))
    assert "签名后笔录内容（含确认语、见证人）有改动" in whole and "行政强制法第十八条第（八）项" in whole


def test_an_unsigned_record_prints_as_a_copy_naming_each_missing_signature(out):
    unsigned = copy.deepcopy(scene())
    unsigned["signing"]["party"]["signature"] = None
    unsigned["signing"]["officers"][1]["signature"] = None
    whole = squeeze("".join(pages_text(write(out, "unsigned", unsigned))))
    assert "副本" in whole
    assert "当事人（被询问人）签名缺失" in whole and "执法人员不少于两人且均须签名" in whole
    assert "行政处罚法第四十二条第一款" in whole
    assert not re.search(r"[A-Za-z]{2,}", re.sub(r"https?://\S+|[0-9a-f-]{20,}", "", whole))
