// Small DOM helpers. Server data is always set as text (never parsed as HTML).

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

// h("td", {class: "num", title: "x"}, "text", childNode, …)
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function facts(dl, rows) {
  dl.replaceChildren(...rows.filter(Boolean).flatMap(([k, v, title]) => [
    h("dt", {}, k), h("dd", { title }, v)]));
}

let toastTimer = null;
export function toast(text) {
  const el = $("#toast");
  el.textContent = text;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 2500);
}

export async function copy(text, what = "Copied") {
  try {
    await navigator.clipboard.writeText(text);
    toast(`${what} to the clipboard`);
  } catch (_) {
    toast("Copy failed: select the text and copy it");
  }
}

export function copyButton(text, label) {
  return h("button", { type: "button", class: "chip", "aria-label": label,
                       onclick: () => copy(text) }, "Copy");
}

export function badge(status) {
  return h("span", { class: `badge badge-${status}` }, status);
}
