// Drawing the rectangles to blur on a copy for a body outside the bureau (art. 29). The records
// administrator drags over the picture; each rectangle is kept in fractions of the picture's width
// and height, so it lands in the same place on the full-size copy and on every video frame. The
// rectangles go into the form's text field, which also works by hand without this script. Only the
// copy is blurred: the original never changes.

function clamp(value) {
  return Math.min(1, Math.max(0, value));
}

function round(value) {
  return Math.round(value * 10000) / 10000;
}

function setUp(editor) {
  const picture = editor.querySelector("img");
  const layer = editor.querySelector("[data-redaction-layer]");
  const form = editor.closest("form");
  const field = form.querySelector('input[name="redactions"]');
  const clear = form.querySelector("[data-redaction-clear]");
  let rectangles = [];
  let start = null;
  let drawing = null;

  function show() {
    layer.replaceChildren(...rectangles.map((r) => {
      const box = document.createElement("div");
      box.className = "redaction-box";
      box.dataset.testid = "redaction-box";
      Object.assign(box.style, { left: `${r.x * 100}%`, top: `${r.y * 100}%`, width: `${r.w * 100}%`, height: `${r.h * 100}%` });
      return box;
    }));
    field.value = rectangles.length ? JSON.stringify(rectangles) : "";
  }

  function fraction(event) {
    const area = picture.getBoundingClientRect();
    return { x: clamp((event.clientX - area.left) / area.width), y: clamp((event.clientY - area.top) / area.height) };
  }

  layer.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    layer.setPointerCapture(event.pointerId);
    start = fraction(event);
    drawing = document.createElement("div");
    drawing.className = "redaction-box drawing";
    layer.append(drawing);
  });
  layer.addEventListener("pointermove", (event) => {
    if (!start) return;
    const now = fraction(event);
    Object.assign(drawing.style, {
      left: `${Math.min(start.x, now.x) * 100}%`, top: `${Math.min(start.y, now.y) * 100}%`,
      width: `${Math.abs(now.x - start.x) * 100}%`, height: `${Math.abs(now.y - start.y) * 100}%`,
    });
  });
  layer.addEventListener("pointerup", (event) => {
    if (!start) return;
    const now = fraction(event);
    const rect = { x: round(Math.min(start.x, now.x)), y: round(Math.min(start.y, now.y)),
                   w: round(Math.abs(now.x - start.x)), h: round(Math.abs(now.y - start.y)) };
    start = null;
    if (rect.w >= 0.01 && rect.h >= 0.01) rectangles.push(rect);  // a click is not a rectangle
    show();
  });
  clear?.addEventListener("click", () => {
    rectangles = [];
    show();
  });
  field.addEventListener("change", () => {
    try {
      const typed = JSON.parse(field.value || "[]");
      rectangles = Array.isArray(typed) ? typed : [typed];
    } catch {
      return;  // the server says what is wrong with a typed value
    }
    show();
  });
}

document.querySelectorAll("[data-redaction-editor]").forEach(setUp);
