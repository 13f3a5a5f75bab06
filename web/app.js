// Sundial web page: the router. Paths mirror the API's (`/jobs/{job}/workers/
// {worker}` shows `/api/jobs/{job}/workers/{worker}`), so every page loads
// directly by URL; links are followed without reloading. While a job runs,
// its pages follow `/api/jobs/{job}/stream` (SSE) and redraw on each change.
"use strict";

/** [pattern, page function, tab, title]: the first match wins. */
const ROUTES = [
  [/^\/$/, portalPage, null, () => "Jobs"],
  [/^\/jobs\/?$/, portalPage, null, () => "Jobs"],
  [/^\/jobs\/([^/]+)\/?$/, jobPage, "", () => "Overview"],
  [/^\/jobs\/([^/]+)\/stages\/([^/]+)\/?$/, stagePage, "", id => "Stage " + id],
  [/^\/jobs\/([^/]+)\/workers\/?$/, workersPage, "/workers", () => "Workers"],
  [/^\/jobs\/([^/]+)\/workers\/([^/]+)\/?$/, workerPage, "/workers", id => "Worker " + id],
  [/^\/jobs\/([^/]+)\/exceptions\/?$/, exceptionsPage, "/exceptions", () => "Exceptions"],
  [/^\/jobs\/([^/]+)\/lineage\/?$/, lineagePage, "/lineage", () => "Lineage"],
  [/^\/jobs\/([^/]+)\/lineage\/([^/]+)\/?$/, splitPage, "/lineage", id => "Split " + id],
  [/^\/jobs\/([^/]+)\/checkpoints\/?$/, checkpointsPage, "/checkpoints", () => "Checkpoints"],
  [/^\/jobs\/([^/]+)\/timeline\/?$/, timelinePage, "/timeline", () => "Timeline"],
  [/^\/jobs\/([^/]+)\/dead-letters\/?$/, deadLettersPage, "/dead-letters", () => "Dead letters"],
  [/^\/jobs\/([^/]+)\/configuration\/?$/, configPage, "/configuration", () => "Configuration"],
];

const TABS = [["", "Overview"], ["/workers", "Workers"], ["/exceptions", "Exceptions"], ["/lineage", "Lineage"],
  ["/checkpoints", "Checkpoints"], ["/timeline", "Timeline"], ["/dead-letters", "Dead letters"], ["/configuration", "Configuration"]];

/** Follows a running job's stream; at most one at a time. */
const live = {
  source: null, job: null, timer: null,
  follow(job, running) {
    if (this.job === job && this.source && running) return;
    this.stop();
    if (!running) return;
    this.job = job;
    const source = this.source = new AbortController();
    sse("/jobs/" + enc(job) + "/stream", source.signal, (name, data) => {
      if (name !== "view") return;
      let view = null;
      try { view = JSON.parse(data); } catch (_) { return; }
      // Redraw at most every 2 s, quietly (no "Loading…", scroll kept).
      // Counted where a test (or a curious user) can see the stream is alive.
      document.body.dataset.liveUpdates = Number(document.body.dataset.liveUpdates || 0) + 1;
      if (!this.timer) this.timer = setTimeout(() => { this.timer = null; render(true); }, 2000);
      if (view && view.status !== "RUNNING") this.stop();
    }).catch(() => {}).finally(() => { if (this.source === source) this.stop(); });
    document.getElementById("live").hidden = false;
  },
  stop() {
    if (this.source) this.source.abort();
    clearTimeout(this.timer);
    this.source = null; this.job = null; this.timer = null;
    document.getElementById("live").hidden = true;
  },
};

/** Goes to page path `href` without reloading the page. */
function navigate(href) {
  history.pushState(null, "", url(href));
  render(false);
}

function crumbs(job, title) {
  const nav = document.getElementById("crumbs");
  nav.replaceChildren(link("/", "Jobs"));
  if (job) append(nav, [h("span", { class: "sep" }, "/"), link(jobHref(job), job)]);
  if (job && title && title !== "Overview") append(nav, [h("span", { class: "sep" }, "/"), h("span", {}, title)]);
}

function tabs(job, current) {
  const nav = document.getElementById("tabs");
  nav.hidden = job === null;
  if (job === null) return nav.replaceChildren();
  const attempt = params().attempt;
  nav.replaceChildren(...TABS.map(([suffix, label]) =>
    h("a", { href: jobHref(job, suffix) + qs({ attempt }), class: suffix === current ? "on" : null }, label)));
}

let renderSeq = 0;

/** Draws the page of the current URL; `quiet` keeps the old one until the new is ready. */
async function render(quiet) {
  const seq = ++renderSeq;
  const app = document.getElementById("app");
  const here = appPath(location.pathname) || "";
  const path = decodeURI(here);
  const route = ROUTES.find(r => r[0].test(here));
  if (!route) {
    live.stop(); tabs(null); crumbs(null);
    app.replaceChildren(h("div", { class: "error" }, "No such page: " + path), link("/", "Back to the jobs"));
    return;
  }
  const [re, page, tab, title] = route;
  const m = here.match(re).slice(1).map(decodeURIComponent);
  const job = m.length ? m[0] : null, id = m.length > 1 ? m[1] : null;
  document.title = (job ? title(id) + " · " + job : "Jobs") + " · Sundial";
  crumbs(job, title(id));
  tabs(job, tab);
  if (auth.missing()) {
    live.stop();
    app.replaceChildren(loginForm(() => render(false), false));
    return;
  }
  if (!quiet) app.replaceChildren(h("p", { class: "muted" }, "Loading…"));
  const q = params();
  const set = changes => {
    const p = new URLSearchParams(location.search);
    for (const [k, v] of Object.entries(changes)) (v === "" || v === null || v === undefined) ? p.delete(k) : p.set(k, v);
    const s = p.toString();
    navigate(here + (s ? "?" + s : ""));
  };
  const ctx = { job, id, q, set, page: (page, size) => set({ page: page > 1 ? page : "", page_size: size }) };
  try {
    const nodes = await page(ctx);
    if (seq !== renderSeq) return; // a newer navigation won
    app.replaceChildren(...[nodes].flat(Infinity).filter(Boolean));
    if (job) {
      const j = quiet && live.job === job ? null : await api("/jobs/" + enc(job)).catch(() => null);
      if (j && seq === renderSeq) live.follow(job, j.status === "RUNNING");
    } else live.stop();
  } catch (e) {
    if (seq !== renderSeq) return;
    if (e instanceof ApiFailure && e.status === 401 && auth.required) {
      live.stop();
      app.replaceChildren(loginForm(() => render(false), true));
      return;
    }
    const msg = e instanceof ApiFailure ? `${e.status}: ${e.message}` : String(e && e.message || e);
    app.replaceChildren(h("div", { class: "error" }, "Could not load this page — " + msg), link("/", "Back to the jobs"));
  }
}

document.addEventListener("click", e => {
  const a = e.target.closest && e.target.closest("a[href]");
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const to = new URL(a.href, location.href);
  const path = appPath(to.pathname);
  if (to.origin !== location.origin || path === null || path.startsWith("/api/")) return;
  e.preventDefault();
  // Within one job, an attempt chosen in the URL sticks to every link.
  const attempt = params().attempt;
  const job = p => (p.match(/^\/jobs\/([^/]+)/) || [])[1];
  if (attempt && !to.searchParams.has("attempt") && job(path) && job(path) === job(appPath(location.pathname) || ""))
    to.searchParams.set("attempt", attempt);
  navigate(path + to.search);
});
window.addEventListener("popstate", () => render(false));
render(false);
