"""Making a PDF must not change how the rest of the process reads photos: WeasyPrint sets Pillow's
process-wide ``ImageFile.LOAD_TRUNCATED_IMAGES`` on import, which would make the media pipeline
accept a cut-off JPEG as whole (and stop flagging it) for every upload after the first PDF. Checked
in a fresh interpreter, where nothing has imported WeasyPrint yet."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROGRAM = """
import io
from datetime import datetime, timezone
from PIL import Image, ImageFile
from fieldapp.documents import archive_forms, paper, pdf, receipt
out = io.BytesIO(); Image.new("RGB", (8, 8), "red").save(out, "JPEG")
now = datetime.now(timezone.utc)
paper.photo_sheet_pdf(paper.PhotoSheetDoc(None, "甲", "c", [paper.SheetPhoto(out.getvalue(), 1, now, "", "张", "")],
                                          "https://x.invalid/verify/c", "c"))
receipt.service_receipt_pdf(receipt.ServiceReceiptDoc(None, "甲", "文书", now, "地", "直接送达", receipt.Signer("乙"),
                                                      None, [], [], "", "https://x.invalid/verify/c", "c"))
archive_forms.file_notes_pdf(archive_forms.FileNotesDoc(None, "甲", {"文书": 1}, "", "张", "", now,
                                                        "https://x.invalid/verify/c", "c"))
print(ImageFile.LOAD_TRUNCATED_IMAGES)
"""


def test_documents_leave_truncated_photos_refused_for_the_rest_of_the_process():
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", PROGRAM], cwd=root, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "False"
