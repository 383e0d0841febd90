// Small DOM helpers: elements are built with h(), never from HTML strings, so data is always text.

/**
 * Creates an element. `attrs` keys: `class`, `on<event>` handlers, boolean attributes (true/false),
 * anything else set as an attribute; children are nodes, strings or arrays (null/false skipped).
 */
export function h(tag, attrs = {}, ...children) {
  const svg = SVG_TAGS.has(tag);
  const el = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value' && !svg) el.value = v;
    else if (k === 'checked' && !svg) el.checked = Boolean(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

const SVG_TAGS = new Set(['svg', 'g', 'path', 'line', 'rect', 'circle', 'text', 'polyline', 'polygon', 'title', 'desc']);

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces the children of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/**
 * Replaces the children of `el` only when `key` (e.g. the JSON of the data) changed since the
 * last call, so that a refresh does not move the keyboard focus or the scroll position.
 */
export function replaceIfChanged(el, key, build) {
  if (el.dataset.renderKey === key) return;
  el.dataset.renderKey = key;
  const hadFocus = el.contains(document.activeElement) ? document.activeElement.id : null;
  replace(el, build());
  if (hadFocus) document.getElementById(hadFocus)?.focus();
}

/** Says `message` to screen readers (and shows it in the status line). */
export function announce(message) {
  const status = document.getElementById('status');
  if (!status) return;
  status.textContent = '';
  setTimeout(() => { status.textContent = message; }, 30);
}

let nextId = 0;
/** A fresh element id with `prefix`. */
export function uid(prefix = 'id') {
  nextId += 1;
  return `${prefix}-${nextId}`;
}
