"""The package's two PDFs from its plan: the written explanation (证据说明: art. 27; 行政诉讼证据规定
art. 12; 民事证据规定 arts. 93–94) and the extraction record (电子数据证据提取笔录). The facts behind
art. 93's points are what fieldapp does for every record, stated once here."""
from __future__ import annotations

from . import pdf

MADE = ("照片与短视频由执法人员在现场用执法记录系统的手机应用拍摄，拍摄时即在手机上计算 SHA-256，并随所属记录修订用该手机的"
        "设备密钥（ECDSA P-256，不可导出）签名；执法记录仪视频由采集站从记录仪导出，入库时计算 SHA-256 与 SM3 并与采集站登记值核对。")
KEPT = ("原件按内容哈希存放于专用存储，从不改写；按《规定》第二十六条确定保存期限，作为证据使用的永久保存，处置须经管理员与分管局负责人批准"
        "并留有记录。")
MOVED = ("手机离线保存，联网后分块上传，服务器逐块校验并在完成时重新计算哈希，与手机登记值不符的一律拒收；提取时按哈希从存储原样复制，"
         "逐个重新计算 SHA-256 与 SM3。")
CHECKED = ("每条记录修订附有设备签名；服务器的每次变更与每次访问均写入哈希链审计日志，链头定期由服务器私钥（Ed25519，密钥不在数据库中）"
           "签名为检查点。本包附有离线核验程序 verify.html 与 verify.py，任何人无需信任服务器即可复核。")
MONITORING = "设备签名、哈希链审计日志与签名检查点（见下表）；核验程序随包提供。"
ARCHIVE = ("记录在业务过程中形成，按档案管理方式保管：调阅、复制经批准并登记（《规定》第二十九条），保存与处置按第二十六条执行，"
           "全部操作可追溯（第三十条）。")


def _items(plan, files):
    by_path = {f["path"]: f for f in files}
    for item in plan.items:
        f = by_path[item.original_path]
        yield item, f


def explanation(plan, files) -> bytes:
    items = []
    for item, f in _items(plan, files):
        place = None
        if item.place:
            place = pdf.Place(text=str(item.place.get("text") or ""), lat_e6=item.place.get("lat_e6"),
                              lon_e6=item.place.get("lon_e6"))
        record = None
        if item.record:
            record = pdf.RecordRef(id=item.record["id"], revision=item.record["revision"], type=item.record["type"],
                                   withdrawn=item.record["withdrawn"])
        items.append(pdf.ExplanationItem(
            number=item.number, file_name=item.original_path, kind=item.kind, sha256=f["sha256"], sm3=f["sm3"],
            size=f["size"], maker=pdf.Person(item.maker.get("name") or "", item.maker.get("cert_no") or ""),
            captured_server=item.captured_at["server"], captured_device=item.captured_at.get("device"),
            device_id=item.maker.get("device_id"), camera_serial=item.maker.get("camera_serial"), place=place,
            record=record, proves=item.proves, transcript=item.transcript or None, sm3_source=item.sm3_source,
            chain=item.chain))
    checkpoints = [pdf.Checkpoint(seq=c["seq"], at=c["at"], head=c["head_hash"]) for c in plan.checkpoints if c]
    access = [pdf.AccessEntry(at=r["at"], who=r["who"], action=r["action"], approver=r["approver"], purpose=r["purpose"])
              for r in plan.register]
    facts = pdf.ReliabilityFacts(made=MADE, kept=KEPT, moved=MOVED, checked=CHECKED, monitoring=MONITORING,
                                 archive=ARCHIVE, access=access, checkpoints=checkpoints)
    extractor = plan.extraction["by"]
    return pdf.explanation_pdf(pdf.ExplanationDoc(
        case_id=plan.case["id"], case_number=plan.case["number"], party=plan.case["party"],
        package_id=str(plan.package_id), grant_number=plan.grant["number"], items=items, facts=facts,
        extracted_by=[pdf.Person(extractor["name"], extractor["cert_no"])], extracted_at=plan.extraction["at"]))


def extraction_record(plan, files) -> bytes:
    extractor = plan.extraction["by"]
    rows = [pdf.ExtractionItem(number=item.number, file_name=item.original_path, size=f["size"], sha256=f["sha256"],
                               sm3=f["sm3"]) for item, f in _items(plan, files)]
    return pdf.extraction_record_pdf(pdf.ExtractionDoc(
        case_id=plan.case["id"], case_number=plan.case["number"], party=plan.case["party"],
        target=f"执法记录系统存储中本案的音像资料与照片原件（{len(rows)} 个文件）", started_at=plan.extraction["at"],
        place=plan.extraction["place"], method=plan.extraction["method"],
        process=plan.process or "由音像记录管理员在执法记录系统中依批准选定文件，系统按哈希原样复制并逐个计算、核对哈希值，生成本证据包。",
        items=rows, officers=[pdf.Person(extractor["name"], extractor["cert_no"])], package_id=str(plan.package_id)))
