// Sundial web page: DOM building, formatting, the API client, tables and
// pagers. No framework: every helper returns DOM nodes; text is always set
// as text (never as HTML), so data from the log cannot inject markup.
"use strict";

/**
 * The page's root as the browser sees it ("/" or "/solstice/"): the shell's
 * relative <base href> leads there from any page path, whatever prefix a
 * reverse proxy added or kept. Page paths in the code ("/jobs/x") are
 * relative to it: `url` turns one into an address, `appPath` reads one.
 */
const ROOT = new URL(document.baseURI).pathname;

/** The address of page path `p` ("/jobs/x?y" → ROOT + "jobs/x?y"). */
function url(p) { return p.startsWith("/") ? ROOT + p.slice(1) : p; }

/** The page path of an address's `pathname`; null outside the page's root. */
function appPath(pathname) {
  if (pathname + "/" === ROOT) return "/";
  return pathname.startsWith(ROOT) ? "/" + pathname.slice(ROOT.length) : null;
}

/** Builds an element: h("a", {href: "/x", class: "c"}, "text", child…); a page path in href becomes an address. */
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "href") el.setAttribute(k, url(v));
    else el.setAttribute(k, v === true ? "" : v);
  }
  append(el, kids);
  return el;
}

function append(el, kids) {
  for (const k of kids.flat(Infinity)) {
    if (k === null || k === undefined || k === false) continue;
    el.appendChild(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return el;
}

const enc = encodeURIComponent;

/** A client-side link (the router intercepts it). */
function link(href, ...kids) { return h("a", { href }, ...kids); }

function jobHref(job, rest) { return "/jobs/" + enc(job) + (rest || ""); }

const fmt = {
  int(v) { return v === null || v === undefined ? "–" : Number(v).toLocaleString("en-US"); },
  num(v, d = 1) { return v === null || v === undefined ? "–" : Number(v).toLocaleString("en-US", { maximumFractionDigits: d }); },
  /** 12.3k, 4.5M: for rates and big counts in tight cells. */
  short(v) {
    if (v === null || v === undefined) return "–";
    const a = Math.abs(v);
    if (a >= 1e9) return (v / 1e9).toFixed(2) + "G";
    if (a >= 1e6) return (v / 1e6).toFixed(2) + "M";
    if (a >= 1e4) return (v / 1e3).toFixed(1) + "k";
    return fmt.num(v, a < 10 ? 2 : 0);
  },
  bytes(v) {
    if (v === null || v === undefined) return "–";
    const u = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0, x = v;
    while (x >= 1024 && i < u.length - 1) { x /= 1024; i++; }
    return (i ? x.toFixed(1) : x) + " " + u[i];
  },
  /** Event time (seconds since the epoch) as UTC date and time. */
  time(t) {
    if (t === null || t === undefined) return "–";
    return new Date(t * 1000).toISOString().replace("T", " ").slice(0, 23);
  },
  /** Event time as UTC clock time only, for dense tables. */
  clock(t) {
    if (t === null || t === undefined) return "–";
    return new Date(t * 1000).toISOString().slice(11, 23);
  },
  dur(ms) {
    if (ms === null || ms === undefined) return "–";
    if (ms < 1000) return fmt.num(ms, 0) + " ms";
    const s = ms / 1000;
    if (s < 60) return s.toFixed(1) + " s";
    const m = Math.floor(s / 60);
    if (m < 60) return m + "m " + Math.round(s % 60) + "s";
    return Math.floor(m / 60) + "h " + (m % 60) + "m";
  },
  pct(v) { return v === null || v === undefined ? "–" : fmt.num(v, 1) + "%"; },
};

function badge(text) { return h("span", { class: "badge b-" + text }, text); }

/** An API failure, with the server's message and status. */
class ApiFailure extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

/**
 * The API's token, when the server wants one (the shell says so): asked
 * once by `loginForm`, kept in sessionStorage for this browser session
 * only, sent as an Authorization header, never put in a URL.
 */
const auth = {
  required: document.querySelector('meta[name="sundial-auth"]').content === "bearer",
  key: "sundial-token:" + ROOT,
  get token() { return sessionStorage.getItem(this.key); },
  set token(t) { if (t) sessionStorage.setItem(this.key, t); else sessionStorage.removeItem(this.key); },
  /** Whether the page must ask for the token before reading anything. */
  missing() { return this.required && !this.token; },
  headers(h) { return this.token ? Object.assign({ authorization: "Bearer " + this.token }, h) : h; },
};

/** GET /api + path as JSON; a non-2xx answer throws an ApiFailure. */
async function api(path) {
  // A page opened with ?attempt=A reads that attempt of its job (the API
  // serves the latest otherwise); the portal lists latest attempts only.
  const attempt = new URLSearchParams(location.search).get("attempt");
  if (attempt && path.startsWith("/jobs/")) path += (path.includes("?") ? "&" : "?") + "attempt=" + enc(attempt);
  if (auth.missing()) throw new ApiFailure(401, "this server wants an access token");
  const r = await fetch(url("/api" + path), { headers: auth.headers({ accept: "application/json" }) });
  if (r.status === 401) auth.token = null; // wrong or revoked: ask again
  let body = null;
  try { body = await r.json(); } catch (_) { body = null; }
  if (!r.ok) throw new ApiFailure(r.status, (body && body.error) || r.statusText);
  return body;
}

/** Query string from an object, skipping empty values. */
function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== "" && v !== null && v !== undefined) p.set(k, v);
  const s = p.toString();
  return s ? "?" + s : "";
}

/**
 * A table: cols = [{label, n (numeric), cell(row) -> node|text}], inside a
 * scrolling box whose header row sticks while the body scrolls.
 */
function table(cols, rows, empty) {
  if (!rows.length) return h("div", { class: "empty" }, empty || "Nothing here yet.");
  return h("div", { class: "scroll" },
    h("table", {},
      h("thead", {}, h("tr", {}, cols.map(c => h("th", { class: c.n ? "n" : c.cls }, c.label)))),
      h("tbody", {}, rows.map(r => h("tr", {}, cols.map(c => h("td", { class: c.n ? "n" : c.cls }, c.cell(r))))))));
}

/** Page sizes offered by the pagers (the API takes 1–1000). */
const PAGE_SIZES = [10, 25, 50, 100, 250, 500, 1000];

/**
 * A pager for a paged answer {page, page_size, total}: calls go(page,
 * page_size) on a click; `what` names the items ("workers").
 */
function pager(ans, what, go) {
  const pages = Math.max(1, Math.ceil(ans.total / ans.page_size));
  const from = ans.total ? (ans.page - 1) * ans.page_size + 1 : 0;
  const to = Math.min(ans.total, ans.page * ans.page_size);
  const btn = (label, page, title) => h("button", {
    title, disabled: page < 1 || page > pages || page === ans.page,
    onclick: () => go(page, ans.page_size),
  }, label);
  const sizes = h("select", { "aria-label": "page size", onchange: e => go(1, Number(e.target.value)) },
    PAGE_SIZES.map(s => h("option", { value: s, selected: s === ans.page_size }, s + " / page")));
  return h("div", { class: "pager" },
    btn("«", 1, "first page"), btn("‹", ans.page - 1, "previous page"),
    h("span", { class: "pageinfo" }, `Page ${ans.page} of ${pages}`),
    btn("›", ans.page + 1, "next page"), btn("»", pages, "last page"),
    h("span", {}, `${fmt.int(from)}–${fmt.int(to)} of ${fmt.int(ans.total)} ${what}`),
    sizes);
}

/** Current URL query parameters as an object. */
function params() { return Object.fromEntries(new URLSearchParams(location.search)); }

/** Definition list from [label, value] pairs. */
function props(pairs) {
  return h("dl", { class: "props" }, pairs.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

/** A strip of key figures: [[label, value], …]. */
function kpis(pairs) {
  return h("div", { class: "kpis" }, pairs.map(([k, v]) => h("div", { class: "kpi" }, h("div", { class: "v" }, v), h("div", { class: "k" }, k))));
}

function panel(title, ...kids) { return h("section", { class: "panel" }, title ? h("h2", {}, title) : null, ...kids); }

/**
 * Follows a server-sent event stream over fetch (EventSource cannot send
 * the token header): calls onEvent(name, data) per event until `abort`
 * (an AbortController's signal) fires or the server ends the stream.
 */
async function sse(path, signal, onEvent) {
  const r = await fetch(url("/api" + path), { headers: auth.headers({ accept: "text/event-stream" }), signal });
  if (!r.ok || !r.body) throw new ApiFailure(r.status, r.statusText);
  const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        const i = line.indexOf(":");
        const field = i < 0 ? line : line.slice(0, i);
        const v = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
        if (field === "event") name = v;
        else if (field === "data") data.push(v);
      }
      if (data.length) onEvent(name, data.join("\n"));
    }
  }
}

/** The form that asks for the API's token; `done` runs once it is kept. */
function loginForm(done, failed) {
  const input = h("input", { type: "password", name: "token", autocomplete: "current-password", "aria-label": "access token", required: true });
  return h("form", { class: "login panel", onsubmit: e => { e.preventDefault(); auth.token = input.value.trim(); done(); } },
    h("h2", {}, "Access token"),
    h("p", { class: "muted" }, failed ? "That token was not accepted; try again." : "This server wants an access token. It is kept for this browser session only."),
    h("label", {}, "Token ", input), " ", h("button", { type: "submit" }, "Open"));
}
