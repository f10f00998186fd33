"""A phone's name as a lead says it ("华为 Mate 60 Pro · Android 14"), read from the User-Agent its
browser sent when it registered, instead of the raw string.

Chrome now hides the model ("Android 10; K"); Huawei's and other vendors' browsers and in-app
web views still send it as a model code. Codes are mapped for phones common in the bureau; any
other code is shown with its brand, and a phone that hides its model is named by its system.
"""
from __future__ import annotations

import re

# Model code → marketing name (zh, en). Extend as phones arrive; unknown codes still show.
MODELS = {
    "ALN-AL00": ("华为 Mate 60 Pro", "HUAWEI Mate 60 Pro"), "ALN-AL80": ("华为 Mate 60 Pro", "HUAWEI Mate 60 Pro"),
    "BRA-AL00": ("华为 Mate 60", "HUAWEI Mate 60"),
    "23127PN0CC": ("小米 14", "Xiaomi 14"),
    "V2309A": ("vivo X100", "vivo X100"),
}
# Brand by the start of a model code, when the code itself is not in MODELS.
BRANDS = (
    (re.compile(r"^(HUAWEI|[A-Z]{3}-(AL|AN|TL)\d\d)"), "华为", "HUAWEI"),
    (re.compile(r"^(HONOR|[A-Z]{3}-(AN|AL)\d\d[A-Z]?$)"), "荣耀", "HONOR"),
    (re.compile(r"^SM-"), "三星", "Samsung"),
    (re.compile(r"^(Redmi|MI |Mi |Xiaomi|2\d{3}[0-9A-Z]{5,6}C$)"), "小米", "Xiaomi"),
    (re.compile(r"^(OPPO|P[A-Z]{2}\d{3}$)"), "OPPO", "OPPO"),
    (re.compile(r"^(vivo|V\d{4}[A-Z]?$)"), "vivo", "vivo"),
)
_ANDROID = re.compile(r"Android (\d+(?:\.\d+)?)(?:; ([^;)]+?))?(?: Build/[^;)]*)?[;)]")
_HARMONY = re.compile(r"(?:OpenHarmony|HarmonyOS)[ /]?(\d+(?:\.\d+)?)?")
_IOS = re.compile(r"(iPhone|iPad)[^)]*? OS (\d+)_(\d+)")


def _model(code: str, zh: bool) -> str:
    code = code.strip()
    if code in ("K", "wv", ""):
        return ""
    if code in MODELS:
        return MODELS[code][0 if zh else 1]
    for pattern, brand_zh, brand_en in BRANDS:
        if pattern.search(code):
            brand = brand_zh if zh else brand_en
            return code if code.upper().startswith(brand_en.upper()) else f"{brand} {code}"
    return code


def device_name(user_agent: str | None, zh: bool = True) -> str:
    """"华为 Mate 60 Pro · Android 14", "iPhone · iOS 17.5", "Windows 电脑"; "" when nothing is known."""
    ua = user_agent or ""
    if m := _IOS.search(ua):
        return f"{m.group(1)} · iOS {m.group(2)}.{m.group(3)}"
    if m := _HARMONY.search(ua):
        system = ("鸿蒙 " if zh else "HarmonyOS ") + (m.group(1) or "")
        model = _model((_ANDROID.search(ua) or [None, None, ""])[2] or "", zh)
        return " · ".join(p for p in (model, system.strip()) if p)
    if m := _ANDROID.search(ua):
        model = _model(m.group(2) or "", zh) or ("安卓手机" if zh else "Android phone")
        return f"{model} · Android {m.group(1)}"
    for marker, name_zh, name_en in (("Windows", "Windows 电脑", "Windows computer"),
                                     ("Macintosh", "Mac 电脑", "Mac"), ("Linux", "Linux 电脑", "Linux computer")):
        if marker in ua:
            return name_zh if zh else name_en
    return ""
