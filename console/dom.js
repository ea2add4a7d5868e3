// Small DOM helpers. Text from the API only ever becomes text nodes (never HTML).

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

// h("button", {type: "button", dataset: {n: 1}, onclick}, "text", child, ...)
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "dataset") Object.assign(element.dataset, value);
    else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "className") element.className = value;
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  element.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return element;
}

export function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString();
}

export function bytes(n) {
  if (n === null || n === undefined) return "";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export function duration(seconds) {
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  return `${Math.round(seconds / 360) / 10} h`;
}

// The API's error as one line for people: its message, and the request id to quote.
export function describe(error) {
  if (!error || error.status === 0) return "The server could not be reached.";
  const id = error.requestId ? ` (request ${error.requestId})` : "";
  return `${error.message}${id}`;
}

// A status line: shown in the page's live region, so screen readers hear it too.
export function notify(text, kind = "info") {
  const notice = $("#notice");
  notice.textContent = text;
  notice.dataset.kind = kind;
  notice.hidden = !text;
}
