// Strings come from the server's translation catalogues, embedded in each page as JSON.
let strings = null;

export function t(key) {
  if (strings === null) {
    const node = document.getElementById("i18n");
    strings = node ? JSON.parse(node.textContent) : {};
  }
  return strings[key] ?? key;
}

// Citations are stored in one short, checkable form ("art. 19", "arts. 23–24",
// "行政处罚法 art. 42, 55; 行政强制法 art. 18"); a Chinese reader sees them as an official writes
// them (第十九条, 第二十三条至第二十四条, 行政处罚法第四十二条、第五十五条；行政强制法第十八条). The
// server's fieldapp/rules/catalogue.py format_citation does the same for its pages; this is the
// phone's one place for it, working from the cached catalogue without a network.
// A single article may name one item: "行政强制法 art. 18(三)" → 行政强制法第十八条第三项.
const CITATION = /^(?:(\S+) )?arts?\. (\d+(?:(?:–|-|\/|, )\d+)*)(?:\(([一二三四五六七八九十]+)\))?$/;
const DIGITS_ZH = "零一二三四五六七八九";

export function numberZh(n) {
  if (!(n > 0 && n < 10000)) return String(n);
  let out = "";
  let pendingZero = false;
  for (const [value, unit] of [[1000, "千"], [100, "百"], [10, "十"], [1, ""]]) {
    const digit = Math.floor(n / value);
    n %= value;
    if (digit) {
      if (pendingZero) out += "零";
      out += (digit === 1 && unit === "十" && !out ? "" : DIGITS_ZH[digit]) + unit;
      pendingZero = false;
    } else if (out) {
      pendingZero = true;
    }
  }
  return out;
}

function numbersZh(nums) {
  return nums.split(/, |\//).map((part) => {
    const [low, high] = part.replace("-", "–").split("–");
    const text = `第${numberZh(Number(low))}条`;
    return high ? `${text}至第${numberZh(Number(high))}条` : text;
  }).join("、");
}

export function formatCitation(text, zh = document.documentElement.lang.startsWith("zh")) {
  if (!text || !zh) return text || "";
  return text.split(";").map((part) => {
    const match = part.trim().match(CITATION);
    return match ? (match[1] || "") + numbersZh(match[2]) + (match[3] ? `第${match[3]}项` : "") : part.trim();
  }).join("；");
}
