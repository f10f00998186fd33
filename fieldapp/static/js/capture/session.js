// Who is signed in on this phone, from the page the server rendered (cached for offline use).
let cached = null;

export async function me() {
  if (cached) return cached;
  const node = document.getElementById("capture-context");
  cached = node ? JSON.parse(node.textContent).user : null;
  return cached;
}
