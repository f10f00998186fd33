// Strings come from the server's translation catalogues, embedded in each page as JSON.
let strings = null;

export function t(key) {
  if (strings === null) {
    const node = document.getElementById("i18n");
    strings = node ? JSON.parse(node.textContent) : {};
  }
  return strings[key] ?? key;
}
