// Sundial web page: one async function per page. Each takes the route
// context {job, id, q} and returns the page's DOM, read from the /api routes.
"use strict";

const J = job => "/jobs/" + enc(job);

// ---- portal ----------------------------------------------------------------

async function portalPage(ctx) {
  const q = ctx.q;
  const [ov, jobs] = await Promise.all([
    api("/overview"),
    api("/jobs" + qs({ status: q.status, page: q.page, page_size: q.page_size || 50 })),
  ]);
  const tab = (label, status, n) => h("a", { href: "/" + qs({ status }), class: (q.status || "") === status ? "on" : "" }, `${label} (${fmt.int(n)})`);
  return [
    h("h1", {}, "Jobs"),
    kpis([["Jobs", fmt.int(ov.total)], ["Running", fmt.int(ov.running)], ["Completed", fmt.int(ov.completed)], ["Failed", fmt.int(ov.failed)]]),
    h("nav", { class: "tabs inline" }, tab("All", "", ov.total), tab("Running", "running", ov.running),
      tab("Completed", "completed", ov.completed), tab("Failed", "failed", ov.failed)),
    pager(jobs, "jobs", ctx.page),
    table([
      { label: "Job", cell: j => link(J(j.job_id), j.job_id) },
      { label: "Status", cell: j => badge(j.status) },
      { label: "Attempt", cell: j => h("span", { class: "mono" }, j.attempt_id) },
      { label: "Started (UTC)", cell: j => fmt.time(j.start_time) },
      { label: "Duration", n: 1, cell: j => fmt.dur(j.duration_ms) },
      { label: "Stages", n: 1, cell: j => fmt.int(j.stage_count) },
      { label: "Workers", n: 1, cell: j => fmt.int(j.worker_count) },
      { label: "Input records", n: 1, cell: j => fmt.int(j.total_input_records) },
      { label: "Output records", n: 1, cell: j => fmt.int(j.total_output_records) },
      { label: "Exceptions", n: 1, cell: j => fmt.int(j.exception_count) },
      { label: "Dead letters", n: 1, cell: j => fmt.int(j.dead_letter_count) },
    ], jobs.items, "No jobs with this status."),
  ];
}

// ---- job -------------------------------------------------------------------

function jobKpis(j) {
  return kpis([
    ["Started (UTC)", fmt.time(j.start_time).slice(0, 19)],
    ["Duration", fmt.dur(j.duration_ms)],
    ["Stages", fmt.int(j.stage_count)],
    ["Workers run/total", `${fmt.int(j.worker_count)} / ${fmt.int(j.total_workers)}`],
    ["Input records", fmt.int(j.total_input_records)],
    ["Output records", fmt.int(j.total_output_records)],
    ["Exceptions", fmt.int(j.exception_count)],
    ["Dead letters", fmt.int(j.dead_letter_count)],
    ["Duplicates", fmt.int(j.duplicate_count)],
    ["Missing", fmt.int(j.missing_count)],
    ["Splits", fmt.int(j.split_count)],
    ["Log offset", fmt.int(j.log_offset)],
  ]);
}

function stageTable(job, stages) {
  return table([
    { label: "Stage", cell: x => link(J(job) + "/stages/" + enc(x.stage_id), x.stage_id) },
    { label: "Operator", cell: x => x.operator_type },
    { label: "Status", cell: x => badge(x.status) },
    { label: "Workers", n: 1, cell: x => `${fmt.int(x.worker_count)} / ${fmt.int(x.total_workers)}` },
    { label: "Parallelism", n: 1, cell: x => `${x.min_parallelism ?? "–"}–${x.max_parallelism ?? "–"}` },
    { label: "Input records", n: 1, cell: x => fmt.int(x.input_records) },
    { label: "Output records", n: 1, cell: x => fmt.int(x.output_records) },
    { label: "In/s", n: 1, cell: x => fmt.short(x.input_throughput) },
    { label: "Out/s", n: 1, cell: x => fmt.short(x.output_throughput) },
    { label: "Queue lag", n: 1, cell: x => fmt.int(x.queue_lag) },
    { label: "Backpressure", cell: x => (x.backpressure_active ? badge("backpressure") : "no") },
    { label: "Skew", n: 1, cell: x => fmt.num(x.skew_ratio, 2) },
    { label: "Exceptions", n: 1, cell: x => fmt.int(x.exception_count) },
  ], stages, "No stages known yet.");
}

/** Metric history of each stage, as chart series of `field`. */
function seriesOf(histories, field) {
  return histories.map(m => ({
    name: m.stage_id,
    points: m.points.filter(p => p[field] !== null && p[field] !== undefined).map(p => [p.start_time, p[field]]),
  }));
}

/** Windows where `field` is true, merged into [start, end] spans. */
function spansOf(histories, field) {
  const wins = histories.flatMap(m => m.points.filter(p => p[field]).map(p => [p.start_time, p.end_time]));
  wins.sort((a, b) => a[0] - b[0]);
  const out = [];
  for (const w of wins) {
    const last = out[out.length - 1];
    if (last && w[0] <= last[1]) last[1] = Math.max(last[1], w[1]);
    else out.push([w[0], w[1]]);
  }
  return out;
}

async function allStages(job) {
  const first = await api(J(job) + "/stages?page_size=1000");
  return first.items;
}

async function jobPage(ctx) {
  const job = ctx.job;
  const [j, stages] = await Promise.all([api(J(job)), allStages(job)]);
  const [histories, exc, cps] = await Promise.all([
    Promise.all(stages.map(x => api(J(job) + "/stages/" + enc(x.stage_id) + "/metrics"))),
    // Counts only: the members are a scan of every exception record.
    api(J(job) + "/exceptions/summary?members=false"), api(J(job) + "/checkpoints"),
  ]);
  const recent = cps.history.slice(-8).reverse();
  return [
    h("h1", {}, job, badge(j.status), h("span", { class: "muted mono" }, "attempt " + j.attempt_id)),
    jobKpis(j),
    h("div", { class: "grid3" },
      panel("Stage graph", dagChart(stages, j.dag_edges || {}, id => J(job) + "/stages/" + enc(id))),
      panel("Output throughput (records/s)", lineChart(seriesOf(histories, "output_throughput"), { label: "output throughput" })),
      panel("Queue lag (records)", lineChart(seriesOf(histories, "queue_lag"), {
        label: "queue lag", bands: spansOf(histories, "backpressure_active"), bandLabel: "backpressure",
      }))),
    panel("Stages", stageTable(job, stages)),
    h("div", { class: "grid3" },
      panel("Workers reporting (autoscaling)", lineChart(seriesOf(histories, "workers_reporting"), { label: "workers", format: v => fmt.num(v, 1) })),
      panel(`Exceptions (${fmt.int(exc.group_count)} groups, ${fmt.int(exc.total)} in all)`, table([
        { label: "Count", n: 1, cell: g => fmt.int(g.count) },
        { label: "Group", cls: "wrap", cell: g => [
          link(J(job) + "/exceptions" + qs({ exception_type: g.exception_type }), g.exception_type),
          h("span", { class: "muted" }, " in " + g.stage_id), h("div", { class: "mono" }, g.normalized_message)] },
      ], exc.groups.slice(0, 5), "No exceptions.")),
      panel(`Checkpoints (${fmt.int(cps.completed)} ok, ${fmt.int(cps.failed)} failed)`, table([
        { label: "Id", n: 1, cell: x => link(J(job) + "/checkpoints", String(x.checkpoint_id)) },
        { label: "Status", cell: x => badge(x.status) },
        { label: "Triggered", cell: x => fmt.clock(x.trigger_time) },
        { label: "Duration", n: 1, cell: x => fmt.dur(x.duration_ms) },
        { label: "State size", n: 1, cell: x => fmt.bytes(x.state_size_bytes) },
      ], recent, "No checkpoints."))),
  ];
}

// ---- stage -----------------------------------------------------------------

async function stagePage(ctx) {
  const { job, id, q } = ctx;
  const base = J(job) + "/stages/" + enc(id);
  const [st, m, ws] = await Promise.all([
    api(base), api(base + "/metrics"),
    api(base + "/workers" + qs({ page: q.page, page_size: q.page_size || 50 })),
  ]);
  const pts = field => m.points.filter(p => p[field] !== null && p[field] !== undefined).map(p => [p.start_time, p[field]]);
  const parts = Object.entries(st.partition_metrics || {}).map(([p, v]) => ({ p, ...v }));
  return [
    h("h1", {}, "Stage " + id, badge(st.status), h("span", { class: "muted" }, st.operator_type)),
    kpis([
      ["Workers run/total", `${fmt.int(st.worker_count)} / ${fmt.int(st.total_workers)}`],
      ["Parallelism", `${st.min_parallelism ?? "–"}–${st.max_parallelism ?? "–"}`],
      ["Input records", fmt.int(st.input_records)], ["Output records", fmt.int(st.output_records)],
      ["In/s", fmt.short(st.input_throughput)], ["Out/s", fmt.short(st.output_throughput)],
      ["Queue lag", fmt.int(st.queue_lag)], ["Backpressure", st.backpressure_active ? badge("backpressure") : "no"],
      ["Skew", fmt.num(st.skew_ratio, 2)], ["Exceptions", fmt.int(st.exception_count)],
      ["Upstream", (st.upstream || []).map(u => link(J(job) + "/stages/" + enc(u), u + " ")).concat(st.upstream && st.upstream.length ? [] : ["–"])],
      ["Downstream", (st.downstream || []).map(u => link(J(job) + "/stages/" + enc(u), u + " ")).concat(st.downstream && st.downstream.length ? [] : ["–"])],
    ]),
    h("div", { class: "grid3" },
      panel("Throughput (records/s)", lineChart([{ name: "input", points: pts("input_throughput") }, { name: "output", points: pts("output_throughput") }], { label: "stage throughput" })),
      panel("Queue lag (records)", lineChart([{ name: "queue lag", points: pts("queue_lag"), color: PALETTE[1] }], {
        label: "stage lag", bands: spansOf([m], "backpressure_active"), bandLabel: "backpressure",
      })),
      panel("Skew (max/mean worker rate)", lineChart([{ name: "skew", points: pts("skew_ratio"), color: PALETTE[3] }], { label: "stage skew", format: v => fmt.num(v, 2) }))),
    panel("Partitions", table([
      { label: "Partition", cell: r => r.p },
      { label: "Offset", n: 1, cell: r => fmt.int(r.offset) },
      { label: "Lag", n: 1, cell: r => fmt.int(r.lag) },
    ], parts, "No partition metrics reported.")),
    panel("Workers of " + id, pager(ws, "workers", ctx.page), workerTable(job, ws.items)),
  ];
}

// ---- workers ---------------------------------------------------------------

function workerTable(job, items) {
  return table([
    { label: "Worker", cell: w => link(J(job) + "/workers/" + enc(w.worker_id), w.worker_id) },
    { label: "Stage", cell: w => link(J(job) + "/stages/" + enc(w.stage_id), w.stage_id) },
    { label: "Status", cell: w => badge(w.status) },
    { label: "Health", cell: w => badge(w.health) },
    { label: "Partitions", cell: w => (w.assigned_partitions || []).join(",") },
    { label: "Input", n: 1, cell: w => fmt.int(w.input_records) },
    { label: "Output", n: 1, cell: w => fmt.int(w.output_records) },
    { label: "Processed", n: 1, cell: w => fmt.int(w.processed_count) },
    { label: "Proc. time", n: 1, cell: w => fmt.num(w.processing_time, 1) + " s" },
    { label: "Errors", n: 1, cell: w => fmt.int(w.error_count) },
    { label: "CPU", n: 1, cell: w => fmt.pct(w.cpu_percent) },
    { label: "Memory", n: 1, cell: w => fmt.bytes(w.memory_bytes) },
    { label: "GPU", n: 1, cell: w => fmt.pct(w.gpu_percent) },
    { label: "Started", cell: w => fmt.clock(w.start_time) },
    { label: "Last seen", cell: w => fmt.clock(w.last_seen) },
    { label: "Stop reason", cell: w => w.stop_reason || "" },
  ], items, "No workers match.");
}

async function workersPage(ctx) {
  const { job, q } = ctx;
  const [stages, ws] = await Promise.all([
    allStages(job),
    api(J(job) + "/workers" + qs({ stage_id: q.stage_id, status: q.status, page: q.page, page_size: q.page_size || 50 })),
  ]);
  const sel = (name, options) => h("select", { name, "aria-label": name, onchange: e => ctx.set({ [name]: e.target.value, page: "" }) },
    options.map(([v, label]) => h("option", { value: v, selected: (q[name] || "") === v }, label)));
  return [
    h("h1", {}, "Workers"),
    h("div", { class: "filters" },
      "Stage", sel("stage_id", [["", "all"], ...stages.map(x => [x.stage_id, x.stage_id])]),
      "Status", sel("status", [["", "all"], ["RUNNING", "running"], ["STOPPED", "stopped"]])),
    pager(ws, "workers", ctx.page),
    workerTable(job, ws.items),
  ];
}

async function workerPage(ctx) {
  const { job, id } = ctx;
  const w = await api(J(job) + "/workers/" + enc(id));
  return [
    h("h1", {}, "Worker " + id, badge(w.status), w.health !== w.status ? badge(w.health) : null),
    kpis([
      ["Stage", link(J(job) + "/stages/" + enc(w.stage_id), w.stage_id)],
      ["Partitions", (w.assigned_partitions || []).join(", ") || "–"],
      ["Input records", fmt.int(w.input_records)], ["Output records", fmt.int(w.output_records)],
      ["Processed", fmt.int(w.processed_count)], ["Processing time", fmt.num(w.processing_time, 2) + " s"],
      ["Errors", fmt.int(w.error_count)], ["Exceptions", fmt.int(w.exception_count)],
      ["CPU", fmt.pct(w.cpu_percent)], ["Memory", fmt.bytes(w.memory_bytes)], ["GPU", fmt.pct(w.gpu_percent)],
    ]),
    h("div", { class: "grid2" },
      panel("Lifecycle", props([
        ["Started (UTC)", fmt.time(w.start_time)], ["Ended (UTC)", fmt.time(w.end_time)],
        ["Last seen (UTC)", fmt.time(w.last_seen)], ["Stop reason", w.stop_reason || "–"],
      ])),
      panel("Exceptions of this worker",
        (w.events || []).filter(e => e.event === "exception").map(e => h("div", { class: "mono" }, fmt.clock(e.timestamp) + "  " + (e.detail || ""))),
        (w.events || []).some(e => e.event === "exception") ? null : h("div", { class: "empty" }, "None."),
        link(J(job) + "/exceptions" + qs({ stage_id: w.stage_id }), "all exceptions of stage " + w.stage_id + " with stack traces"))),
    panel("Event history (" + (w.events || []).length + ")", table([
      { label: "Time (UTC)", cell: e => fmt.time(e.timestamp) },
      { label: "Event", cell: e => badge(e.event) },
      { label: "Detail", cls: "wrap", cell: e => e.detail || "" },
      { label: "Log offset", n: 1, cell: e => fmt.int(e.offset) },
    ], w.events || [], "No events recorded.")),
  ];
}

// ---- exceptions ------------------------------------------------------------

function groupCard(job, g) {
  const more = (list, n) => (list.length > n ? ` … +${list.length - n}` : "");
  return h("div", { class: "group" },
    h("div", { class: "head" },
      h("span", { class: "count" }, "×" + fmt.int(g.count)),
      h("strong", {}, g.exception_type),
      h("span", {}, "in stage ", link(J(job) + "/stages/" + enc(g.stage_id), g.stage_id)),
      h("span", { class: "muted" }, `first ${fmt.time(g.first_seen)} · last ${fmt.time(g.last_seen)}`)),
    h("div", { class: "mono" }, g.normalized_message),
    (g.workers || []).length ? h("div", { class: "chips" }, h("span", { class: "muted" }, `${fmt.int(g.worker_count)} workers:`),
      g.workers.slice(0, 12).map(w => h("span", { class: "chip" }, link(J(job) + "/workers/" + enc(w), w))), more(g.workers, 12))
      : h("div", { class: "muted" }, "reported by the stage, no worker named"),
    (g.splits || []).length ? h("div", { class: "chips" }, h("span", { class: "muted" }, `${fmt.int(g.split_count)} splits:`),
      g.splits.slice(0, 12).map(x => h("span", { class: "chip" }, link(J(job) + "/lineage/" + enc(x), x))), more(g.splits, 12)) : null,
    h("pre", { class: "trace" }, g.sample_stacktrace || g.sample_message || ""));
}

async function exceptionsPage(ctx) {
  const { job, q } = ctx;
  const [sum, recs] = await Promise.all([
    api(J(job) + "/exceptions/summary"),
    api(J(job) + "/exceptions" + qs({ stage_id: q.stage_id, exception_type: q.exception_type, page: q.page, page_size: q.page_size || 50 })),
  ]);
  const groups = sum.groups.filter(g => (!q.stage_id || g.stage_id === q.stage_id) && (!q.exception_type || g.exception_type === q.exception_type));
  return [
    h("h1", {}, "Exceptions"),
    kpis([["Total", fmt.int(sum.total)], ["Groups", fmt.int(sum.group_count)],
      ...Object.entries(sum.by_type).map(([t, n]) => [t, link(J(job) + "/exceptions" + qs({ exception_type: t }), fmt.int(n))])]),
    q.stage_id || q.exception_type ? h("div", { class: "filters" }, "Filtered:", q.stage_id ? h("span", { class: "chip" }, "stage " + q.stage_id) : null,
      q.exception_type ? h("span", { class: "chip" }, q.exception_type) : null, link(J(job) + "/exceptions", "clear")) : null,
    panel(`Grouped (${groups.length})`, groups.length ? groups.map(g => groupCard(job, g)) : h("div", { class: "empty" }, "No exceptions.")),
    panel("Records, newest first", pager(recs, "exceptions", ctx.page), table([
      { label: "Time (UTC)", cell: e => fmt.time(e.timestamp) },
      { label: "Type", cell: e => e.exception_type },
      { label: "Stage", cell: e => link(J(job) + "/stages/" + enc(e.stage_id), e.stage_id) },
      { label: "Worker", cell: e => (e.worker_id ? link(J(job) + "/workers/" + enc(e.worker_id), e.worker_id) : "–") },
      { label: "Split", cell: e => (e.split_id ? link(J(job) + "/lineage/" + enc(e.split_id), e.split_id) : "–") },
      { label: "Message", cls: "wrap", cell: e => e.message },
    ], recs.items, "No exceptions.")),
  ];
}

// ---- lineage ---------------------------------------------------------------

function splitBox(job, id, me) {
  return h("div", { class: "split" + (me ? " me" : "") }, me ? id : link(J(job) + "/lineage/" + enc(id), id));
}

async function lineagePage(ctx) {
  const { job, q } = ctx;
  const [stages, list] = await Promise.all([
    allStages(job),
    api(J(job) + "/lineage" + qs({ stage_id: q.stage_id, page: q.page, page_size: q.page_size || 50 })),
  ]);
  const find = h("input", { name: "split", placeholder: "split id", size: 34 });
  return [
    h("h1", {}, "Lineage"),
    h("div", { class: "filters" },
      "Stage", h("select", { "aria-label": "stage_id", onchange: e => ctx.set({ stage_id: e.target.value, page: "" }) },
        [["", "all"], ...stages.map(x => [x.stage_id, x.stage_id])].map(([v, l]) => h("option", { value: v, selected: (q.stage_id || "") === v }, l))),
      h("form", { onsubmit: e => { e.preventDefault(); if (find.value.trim()) navigate(J(job) + "/lineage/" + enc(find.value.trim())); } },
        find, " ", h("button", { type: "submit" }, "Open split"))),
    pager(list, "splits", ctx.page),
    table([
      { label: "Split", cell: x => link(J(job) + "/lineage/" + enc(x.split_id), x.split_id) },
      { label: "Stage", cell: x => x.stage_id },
      { label: "Worker", cell: x => (x.worker_id ? link(J(job) + "/workers/" + enc(x.worker_id), x.worker_id) : "–") },
      { label: "Parents", n: 1, cell: x => (x.parents || []).length },
      { label: "Children", n: 1, cell: x => (x.children || []).length },
      { label: "Completed (UTC)", cell: x => fmt.clock(x.complete_time) },
      { label: "Queue wait", n: 1, cell: x => fmt.dur(x.queue_wait_time_ms) },
      { label: "Processing", n: 1, cell: x => fmt.dur(x.processing_time_ms) },
      { label: "In rec.", n: 1, cell: x => fmt.int(x.input_records) },
      { label: "Out rec.", n: 1, cell: x => fmt.int(x.output_records) },
      { label: "In bytes", n: 1, cell: x => fmt.bytes(x.input_bytes) },
      { label: "Out bytes", n: 1, cell: x => fmt.bytes(x.output_bytes) },
    ], list.items, "No processed splits."),
  ];
}

async function splitPage(ctx) {
  const { job, id } = ctx;
  const x = await api(J(job) + "/lineage/" + enc(id));
  const parents = x.parents || [], children = x.children || [];
  const col = (title, ids) => h("div", { class: "col" }, h("h2", {}, title),
    ids.length ? ids.map(p => splitBox(job, p, false)) : h("div", { class: "empty" }, "none"));
  return [
    h("h1", {}, "Split " + id),
    panel("Lineage", h("div", { class: "lineage" },
      col(`Parents (${parents.length})`, parents), h("div", { class: "arrow" }, "→"),
      h("div", { class: "col" }, h("h2", {}, "This split"), splitBox(job, id, true)), h("div", { class: "arrow" }, "→"),
      col(`Children (${children.length})`, children))),
    panel("Details", props([
      ["Stage", link(J(job) + "/stages/" + enc(x.stage_id), x.stage_id)],
      ["Worker", x.worker_id ? link(J(job) + "/workers/" + enc(x.worker_id), x.worker_id) : "–"],
      ["Processed", x.processed ? "yes" : "not yet (known only as a parent)"],
      ["Partition", x.partition_id ?? "–"],
      ["Enqueued (UTC)", fmt.time(x.enqueue_time)], ["Dequeued (UTC)", fmt.time(x.dequeue_time)], ["Completed (UTC)", fmt.time(x.complete_time)],
      ["Queue wait", fmt.dur(x.queue_wait_time_ms)], ["Processing", fmt.dur(x.processing_time_ms)],
      ["Records in / out", `${fmt.int(x.input_records)} / ${fmt.int(x.output_records)}`],
      ["Bytes in / out", `${fmt.bytes(x.input_bytes)} / ${fmt.bytes(x.output_bytes)}`],
      ["Payload key", h("span", { class: "mono" }, x.payload_store_key || "–")],
      ["Payload path", h("span", { class: "mono" }, x.payload_storage_path || "–")],
      ["Log offset", fmt.int(x.offset)],
    ])),
  ];
}

// ---- checkpoints, timeline, dead letters, configuration ---------------------

async function checkpointsPage(ctx) {
  const c = await api(J(ctx.job) + "/checkpoints");
  const color = st => ({ COMPLETED: "#1e8e4e", FAILED: "#c83232" }[String(st).toUpperCase()] || "#2f6fdb");
  return [
    h("h1", {}, "Checkpoints"),
    kpis([["Count", fmt.int(c.count)], ["Completed", fmt.int(c.completed)], ["Failed", fmt.int(c.failed)],
      ["In progress", fmt.int(c.in_progress)], ["Latest completed", c.latest_completed_id ?? "–"]]),
    panel("Duration by checkpoint (green completed, red failed)", barChart(c.history.map(x => ({
      label: String(x.checkpoint_id), value: x.duration_ms || 0, color: color(x.status),
    })), { format: v => fmt.dur(v), label: "checkpoint durations", width: 1300, height: 170 })),
    panel("History", table([
      { label: "Id", n: 1, cell: x => x.checkpoint_id },
      { label: "Status", cell: x => badge(x.status) },
      { label: "Source", cell: x => x.source_id },
      { label: "Triggered (UTC)", cell: x => fmt.time(x.trigger_time) },
      { label: "Completed (UTC)", cell: x => fmt.time(x.completion_time) },
      { label: "Duration", n: 1, cell: x => fmt.dur(x.duration_ms) },
      { label: "State size", n: 1, cell: x => fmt.bytes(x.state_size_bytes) },
      { label: "Source offsets", cell: x => Object.entries(x.source_offsets || {}).map(([p, o]) => `${p}:${o}`).join(" ") },
      { label: "Failure", cls: "wrap", cell: x => x.failure_reason || "" },
    ], c.history, "No checkpoints.")),
  ];
}

async function timelinePage(ctx) {
  const { job, q } = ctx;
  const t = await api(J(job) + "/timeline" + qs({ page: q.page, page_size: q.page_size || 100 }));
  const src = e => {
    if (e.event.startsWith("worker")) return link(J(job) + "/workers/" + enc(e.source_id), e.source_id);
    if (e.event.startsWith("stage")) return link(J(job) + "/stages/" + enc(e.source_id), e.source_id);
    return e.source_id;
  };
  return [
    h("h1", {}, "Timeline"),
    panel("Events of this page over event time (hover a dot)", laneChart(t.items.map(e => ({
      t: e.timestamp, lane: e.event, label: `${e.source_id}${e.detail ? ": " + e.detail : ""}`,
    })), { label: "timeline" })),
    pager(t, "events", ctx.page),
    table([
      { label: "Time (UTC)", cell: e => fmt.time(e.timestamp) },
      { label: "Event", cell: e => badge(e.event) },
      { label: "Source", cell: src },
      { label: "Stage", cell: e => (e.stage_id ? link(J(job) + "/stages/" + enc(e.stage_id), e.stage_id) : "–") },
      { label: "Detail", cls: "wrap", cell: e => e.detail || "" },
      { label: "Log offset", n: 1, cell: e => fmt.int(e.offset) },
    ], t.items, "No lifecycle events."),
  ];
}

async function deadLettersPage(ctx) {
  const { job, q } = ctx;
  const d = await api(J(job) + "/dead-letters" + qs({ page: q.page, page_size: q.page_size || 50 }));
  return [
    h("h1", {}, "Dead letters"),
    pager(d, "dead letters", ctx.page),
    table([
      { label: "Log offset", n: 1, cell: x => fmt.int(x.offset) },
      { label: "Partition", n: 1, cell: x => x.source_partition },
      { label: "Kafka offset", n: 1, cell: x => fmt.int(x.source_offset) },
      { label: "Reason", cls: "wrap", cell: x => x.reason },
      { label: "Preview", cls: "wrap mono", cell: x => x.preview },
    ], d.items, "No dead letters."),
  ];
}

async function configPage(ctx) {
  const [c, att] = await Promise.all([api(J(ctx.job) + "/configuration"), api(J(ctx.job) + "/attempts")]);
  return [
    h("h1", {}, "Configuration"),
    h("div", { class: "grid2" },
      panel("Stages", table([
        { label: "Stage", cell: x => link(J(ctx.job) + "/stages/" + enc(x.stage_id), x.stage_id) },
        { label: "Operator", cell: x => x.operator_type },
        { label: "Min", n: 1, cell: x => x.min_parallelism },
        { label: "Max", n: 1, cell: x => x.max_parallelism },
      ], c.stages || [], "No job_started seen yet.")),
      panel("Attempts", table([
        { label: "Attempt", cell: a => link(J(ctx.job) + qs({ attempt: a.attempt_id }), a.attempt_id) },
        { label: "Status", cell: a => badge(a.status) },
        { label: "State", cell: a => a.state === "complete" ? "complete" : badge(a.state.toUpperCase()) },
        { label: "Source", cell: a => a.source },
        { label: "Log offset", n: 1, cell: a => fmt.int(a.log_offset) },
      ], att.items))),
    panel("Config", h("pre", { class: "trace" }, JSON.stringify(c.config, null, 2))),
    panel("DAG edges", h("pre", { class: "trace" }, JSON.stringify(c.dag_edges, null, 2))),
  ];
}
