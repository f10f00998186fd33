// "Share or print" on a generated document's page. On a phone the PDF is fetched and handed to the
// share sheet (navigator.share with the file), whose targets include the printer and the printing
// apps; where files cannot be shared (a desk browser) it opens in a new tab, to be printed from the
// browser's PDF viewer. A fetch that fails (no signal) says so in the status line below the button.
// The strings come from the button's data attributes, rendered by the server in the page's language.

const button = document.querySelector("[data-share-pdf]");
const status = document.querySelector('[data-testid="share-status"]');
let fetched = null; // the File, kept: a second tap shares at once if the first one's gesture expired

function say(text, link) {
  status.textContent = text || "";
  if (link) {
    const a = document.createElement("a");
    a.href = link;
    a.target = "_blank";
    a.rel = "noopener";
    a.textContent = button.dataset.openLabel;
    status.append(" ", a);
  }
}

// The server's name for the file (Content-Disposition: filename*=UTF-8''…), ending in .pdf.
function nameOf(response) {
  const header = response.headers.get("Content-Disposition") || "";
  let name = "";
  const star = /filename\*=UTF-8''([^;]+)/i.exec(header);
  if (star) {
    try { name = decodeURIComponent(star[1].trim()); } catch { name = ""; }
  }
  if (!name) {
    const plain = /filename="?([^";]+)"?/i.exec(header);
    name = plain ? plain[1] : "document";
  }
  return /\.pdf$/i.test(name) ? name : `${name}.pdf`;
}

async function pdfFile() {
  if (fetched) return fetched;
  const response = await fetch(button.dataset.sharePdf, { credentials: "same-origin", cache: "no-store" });
  if (!response.ok) throw new Error(`status ${response.status}`);
  const blob = await response.blob();
  fetched = new File([blob], nameOf(response), { type: "application/pdf" });
  return fetched;
}

function sharesFiles() {
  return typeof navigator.share === "function" && typeof navigator.canShare === "function";
}

async function shareOrOpen() {
  // Without a share sheet, the tab is opened now, while the tap still counts as the user's (a
  // window opened after the fetch would be taken for a pop-up), and given the PDF once it is here.
  const tab = sharesFiles() ? null : window.open("", "_blank");
  say(button.dataset.working);
  let file;
  try {
    file = await pdfFile();
  } catch (error) {
    if (tab) tab.close();
    const offline = error instanceof TypeError || navigator.onLine === false;
    say(offline ? button.dataset.offline : button.dataset.failed);
    return;
  }
  if (sharesFiles() && navigator.canShare({ files: [file] })) {
    try {
      await navigator.share({ files: [file], title: button.dataset.title });
      say("");
    } catch (error) {
      if (error && error.name === "AbortError") say(""); // the user closed the share sheet
      else say(button.dataset.failed, button.dataset.sharePdf);
    }
    return;
  }
  const url = URL.createObjectURL(file);
  const target = tab || window.open(url, "_blank");
  if (tab) tab.location.href = url;
  if (!target) {
    say(button.dataset.failed, button.dataset.sharePdf);
    return;
  }
  say(button.dataset.opened);
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

if (button && status) {
  button.addEventListener("click", () => { shareOrOpen(); });
}
