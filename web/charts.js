// Sundial web page: hand-drawn SVG charts — time-series lines, bars and the
// stage DAG. Pure functions of their data, returning SVG nodes.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";

function s(tag, attrs, ...kids) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) el.setAttribute(k, v);
  for (const k of kids.flat(Infinity)) {
    if (k === null || k === undefined) continue;
    el.appendChild(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return el;
}

/** Distinct colours for series, in order. */
const PALETTE = ["#2f6fdb", "#e0752d", "#1e8e4e", "#9b4dca", "#c83232", "#138a8a", "#b59b12", "#6b7785"];

/** About n round tick values covering [lo, hi]. */
function ticks(lo, hi, n) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n, mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map(m => m * mag).find(x => x >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) out.push(v);
  return out;
}

/** At most `max` points: the largest value of each bucket (peaks survive). */
function downsample(points, max) {
  if (points.length <= max) return points;
  const out = [], per = points.length / max;
  for (let i = 0; i < max; i++) {
    const b = points.slice(Math.floor(i * per), Math.floor((i + 1) * per));
    out.push(b.reduce((a, p) => (p[1] > a[1] ? p : a), b[0]));
  }
  return out;
}

/**
 * A line chart over event time. series = [{name, points: [[t, v], …]}];
 * opts.format formats y values. Returns a <div> with the SVG and a legend.
 */
function lineChart(series, opts = {}) {
  const W = 480, H = opts.height || 170, L = 42, R = 8, T = 8, B = 20;
  const all = series.flatMap(x => x.points);
  const box = h("div", { class: "chartbox" });
  if (!all.length) return append(box, [h("div", { class: "empty" }, "No closed metric windows yet.")]);
  const t0 = Math.min(...all.map(p => p[0])), t1 = Math.max(...all.map(p => p[0]));
  const ymax = Math.max(1, ...all.map(p => p[1])) * 1.08;
  const x = t => L + (t1 > t0 ? (t - t0) / (t1 - t0) : 0.5) * (W - L - R);
  const y = v => T + (1 - v / ymax) * (H - T - B);
  const f = opts.format || fmt.short;
  const grid = ticks(0, ymax, 4).map(v => s("g", {},
    s("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#edf0f3" }),
    s("text", { x: L - 4, y: y(v) + 3, "text-anchor": "end", "font-size": 10, fill: "#6b7785" }, f(v))));
  const span = t1 - t0;
  const xt = ticks(0, span, 6).map(d => s("text", { x: x(t0 + d), y: H - 5, "text-anchor": "middle", "font-size": 10, fill: "#6b7785" },
    span > 600 ? fmt.clock(t0 + d).slice(0, 5) : "+" + Math.round(d) + "s"));
  // Shaded spans (e.g. backpressure): [[t_start, t_end], …].
  const bands = (opts.bands || []).map(([a, b]) => s("rect", {
    x: x(Math.max(a, t0)), y: T, width: Math.max(1.5, x(Math.min(b, t1)) - x(Math.max(a, t0))), height: H - T - B,
    fill: "#f6c67a", opacity: 0.45,
  }, s("title", {}, opts.bandLabel || "")));
  const lines = series.map((sr, i) => {
    const pts = downsample(sr.points, 400);
    const d = pts.map((p, j) => (j ? "L" : "M") + x(p[0]).toFixed(1) + " " + y(p[1]).toFixed(1)).join("");
    return s("path", { d, fill: "none", stroke: sr.color || PALETTE[i % PALETTE.length], "stroke-width": 1.5, "stroke-linejoin": "round" });
  });
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": opts.label || "chart" },
    bands, grid, s("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, stroke: "#c9d1da" }), xt, lines);
  const legend = h("div", { class: "legend" }, series.map((sr, i) =>
    h("span", {}, h("i", { style: "background:" + (sr.color || PALETTE[i % PALETTE.length]) }), sr.name)),
  bands.length ? h("span", {}, h("i", { style: "background:#f6c67a;height:8px" }), opts.bandLabel) : null);
  return append(box, [svg, legend]);
}

/** Vertical bars: items = [{label, value, color}]; for checkpoint durations. */
function barChart(items, opts = {}) {
  const W = opts.width || 560, H = opts.height || 140, L = 46, R = 8, T = 8, B = 18;
  if (!items.length) return h("div", { class: "empty" }, "Nothing to chart.");
  const vmax = Math.max(1, ...items.map(i => i.value)) * 1.08;
  const bw = (W - L - R) / items.length;
  const y = v => T + (1 - v / vmax) * (H - T - B);
  const f = opts.format || fmt.short;
  const every = Math.ceil(items.length / 12);
  return s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": opts.label || "bars" },
    ticks(0, vmax, 4).map(v => s("g", {},
      s("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#edf0f3" }),
      s("text", { x: L - 4, y: y(v) + 3, "text-anchor": "end", "font-size": 10, fill: "#6b7785" }, f(v)))),
    items.map((it, i) => s("g", {},
      s("rect", { x: L + i * bw + bw * 0.15, y: y(it.value), width: Math.max(1, bw * 0.7), height: H - B - y(it.value), fill: it.color || PALETTE[0] },
        s("title", {}, it.label + ": " + f(it.value))),
      i % every === 0 ? s("text", { x: L + i * bw + bw / 2, y: H - 5, "text-anchor": "middle", "font-size": 10, fill: "#6b7785" }, it.label) : null)));
}

/**
 * The stage DAG, left to right: a column per depth (longest path from a
 * source), edges as curves. stages = stage views; edges = {up: [down…]};
 * href(stage) gives each node's link.
 */
function dagChart(stages, edges, href) {
  const ids = stages.map(x => x.stage_id);
  for (const [up, downs] of Object.entries(edges)) for (const d of [up, ...downs]) if (!ids.includes(d)) ids.push(d);
  const byId = Object.fromEntries(stages.map(x => [x.stage_id, x]));
  const depth = Object.fromEntries(ids.map(i => [i, 0]));
  // Longest path by relaxation; a cycle (bad data) stops after |ids| rounds.
  for (let round = 0; round < ids.length; round++) {
    let changed = false;
    for (const [up, downs] of Object.entries(edges))
      for (const d of downs) if (depth[d] < depth[up] + 1) { depth[d] = depth[up] + 1; changed = true; }
    if (!changed) break;
  }
  const cols = [];
  for (const i of ids) (cols[depth[i]] = cols[depth[i]] || []).push(i);
  const NW = 156, NH = 54, GX = 38, GY = 12;
  const rows = Math.max(...cols.map(c => (c || []).length));
  const W = cols.length * NW + (cols.length - 1) * GX + 20, H = rows * NH + (rows - 1) * GY + 20;
  const pos = {};
  cols.forEach((c, ci) => (c || []).forEach((id, ri) => {
    const off = (H - 20 - (c.length * NH + (c.length - 1) * GY)) / 2;
    pos[id] = { x: 10 + ci * (NW + GX), y: 10 + off + ri * (NH + GY) };
  }));
  const edgeEls = [];
  for (const [up, downs] of Object.entries(edges)) for (const d of downs) {
    const a = pos[up], b = pos[d];
    if (!a || !b) continue;
    const x1 = a.x + NW, y1 = a.y + NH / 2, x2 = b.x - 6, y2 = b.y + NH / 2, mx = (x1 + x2) / 2;
    edgeEls.push(s("path", { class: "edge", d: `M${x1} ${y1} C${mx} ${y1} ${mx} ${y2} ${x2} ${y2}`, "marker-end": "url(#arrow)" }));
  }
  const nodes = ids.map(id => {
    const st = byId[id] || { stage_id: id, status: "PENDING" };
    const p = pos[id];
    const g = s("g", { class: `node s-${st.status}${st.backpressure_active ? " bp" : ""}`, transform: `translate(${p.x},${p.y})`, "data-stage": id },
      s("title", {}, `${id} (${st.operator_type || "?"}): ${st.status}`),
      s("rect", { width: NW, height: NH }),
      s("text", { x: 9, y: 17, "font-size": 12.5, "font-weight": 600, fill: "#1d2733" }, id),
      s("text", { x: 9, y: 33, "font-size": 10.5, fill: "#445" },
        `${fmt.int(st.worker_count)}/${fmt.int(st.total_workers)} workers · ${st.status || ""}`),
      s("text", { x: 9, y: 47, "font-size": 10.5, fill: "#445" },
        `in ${fmt.short(st.input_throughput)}/s · out ${fmt.short(st.output_throughput)}/s${st.backpressure_active ? " · BP" : ""}`));
    g.addEventListener("click", () => navigate(href(id)));
    return g;
  });
  return s("svg", { viewBox: `0 0 ${W} ${H}`, class: "dag", role: "img", "aria-label": "stage graph", style: `max-width:${W * 1.3}px` },
    s("defs", {}, s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" },
      s("path", { d: "M0 0 L10 5 L0 10 z", fill: "#9aa7b6" }))),
    edgeEls, nodes);
}

/**
 * Events on a time axis, one lane per kind: items = [{t, lane, label}].
 * For the timeline: when workers came and went, exceptions, the job's ends.
 */
function laneChart(items, opts = {}) {
  if (!items.length) return h("div", { class: "empty" }, "No events.");
  const lanes = [...new Set(items.map(i => i.lane))];
  const W = opts.width || 1300, LH = 15, L = 120, R = 10, T = 6, B = 18, H = T + lanes.length * LH + B;
  const t0 = Math.min(...items.map(i => i.t)), t1 = Math.max(...items.map(i => i.t));
  const x = t => L + (t1 > t0 ? (t - t0) / (t1 - t0) : 0.5) * (W - L - R);
  const y = lane => T + lanes.indexOf(lane) * LH + LH / 2;
  const color = lane => PALETTE[lanes.indexOf(lane) % PALETTE.length];
  const span = t1 - t0;
  return s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": opts.label || "events over time" },
    lanes.map(l => s("g", {},
      s("line", { x1: L, x2: W - R, y1: y(l), y2: y(l), stroke: "#edf0f3" }),
      s("text", { x: L - 6, y: y(l) + 3.5, "text-anchor": "end", "font-size": 10.5, fill: "#4a5563" }, l))),
    ticks(0, span, 8).map(d => s("text", { x: x(t0 + d), y: H - 5, "text-anchor": "middle", "font-size": 10, fill: "#6b7785" },
      "+" + fmt.num(d, span < 10 ? 1 : 0) + "s")),
    items.map(i => s("circle", { cx: x(i.t).toFixed(1), cy: y(i.lane), r: 3.2, fill: color(i.lane), opacity: 0.8 },
      s("title", {}, fmt.time(i.t) + " " + i.label))));
}
