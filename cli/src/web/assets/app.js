// The zrq dashboard: a page per hash route (#/, #/queue/Q/STATE, #/job/Q/ID, #/workers,
// #/schedules), drawn from the JSON views under /api and refreshed by the live feed
// (/api/live, server-sent events fed by the queues' event channels). Every text from the server
// is set with textContent, never parsed as HTML.
"use strict";

const STATES = ["waiting", "scheduled", "pending", "active", "retrying", "completed", "dead", "cancelled"];
const HISTORY = 600; // ticks kept for the chart (as the server keeps)

let session = { password: false, signed_in: true, actions: false, csrf: null };
const ticks = []; // [{t, interval_ms, queues: {q: {completed, failed, ...}}}]
let lastTick = {};
let refreshing = false;

// ---- small helpers -------------------------------------------------------------------------

/** An element with attributes and children (strings become text nodes). */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const enc = encodeURIComponent;

function age(ms) {
  if (ms === null || ms === undefined || isNaN(ms)) return "–";
  ms = Math.max(0, ms);
  if (ms < 1000) return ms + "ms";
  if (ms < 60000) return (ms / 1000).toFixed(1) + "s";
  if (ms < 3600000) return Math.floor(ms / 60000) + "m" + Math.floor((ms % 60000) / 1000) + "s";
  return Math.floor(ms / 3600000) + "h" + Math.floor((ms % 3600000) / 60000) + "m";
}

function when(unixMs) {
  if (!unixMs) return "–";
  const t = Number(unixMs);
  const delta = Date.now() - t;
  const rel = delta >= 0 ? age(delta) + " ago" : "in " + age(-delta);
  return new Date(t).toISOString().replace("T", " ").replace("Z", " UTC") + " (" + rel + ")";
}

function notice(text, isError) {
  const el = document.getElementById("notice");
  el.textContent = text;
  el.className = isError ? "error" : "";
  el.hidden = !text;
}

async function api(path) {
  const r = await fetch(path, { credentials: "same-origin" });
  const body = await r.json().catch(() => ({ error: r.statusText }));
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

/** Runs an action (one zrq command on the server), then redraws. */
async function act(path, body, done) {
  try {
    const r = await fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": session.csrf || "" },
      body: JSON.stringify(body || {}),
    });
    const reply = await r.json().catch(() => ({ error: r.statusText }));
    if (!r.ok) throw new Error(reply.error || r.statusText);
    notice(done(reply), false);
  } catch (e) {
    notice("refused: " + e.message, true);
  }
  refresh();
}

function actionButton(label, path, body, done, danger) {
  if (!session.actions || !session.signed_in) return null;
  return h("button", {
    "data-action": label, class: danger ? "danger" : null,
    onclick: (e) => { e.preventDefault(); act(path, body, done); },
  }, label);
}

// ---- routing ---------------------------------------------------------------------------------

function route() {
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { parts, query: new URLSearchParams(query || "") };
}

let again = false;

/** Redraws the page from fresh figures; a call during a redraw runs once more after it. */
async function refresh() {
  if (refreshing) { again = true; return; }
  refreshing = true;
  again = false;
  try {
    const { parts, query } = route();
    let view;
    if (!session.signed_in) view = loginView();
    else if (parts[0] === "queue") view = await queueView(parts[1], parts[2] || "pending", query);
    else if (parts[0] === "job") view = await jobView(parts[1], parts[2]);
    else if (parts[0] === "workers") view = await workersView();
    else if (parts[0] === "schedules") view = await schedulesView(query);
    else view = await overviewView();
    const main = document.getElementById("view");
    // Keep what the visitor is typing: forms are drawn once per page, not on every refresh.
    const typing = main.querySelector("form.keep");
    const fresh = view.querySelector("form.keep");
    if (typing && fresh && typing.dataset.page === fresh.dataset.page) fresh.replaceWith(typing);
    main.replaceChildren(view);
    drawChart();
  } catch (e) {
    notice(e.message, true);
  } finally {
    refreshing = false;
    if (again) refresh();
  }
}

// ---- pages -----------------------------------------------------------------------------------

function loginView() {
  const input = h("input", { id: "password", type: "password", placeholder: "password", required: true });
  return h("section", {},
    h("h1", {}, "Sign in"),
    h("form", { id: "login", class: "inline", onsubmit: async (e) => {
      e.preventDefault();
      const r = await fetch("/api/login", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ password: input.value }),
      });
      if (r.ok) { notice("", false); await start(); } else notice("wrong password", true);
    } }, input, h("button", { type: "submit" }, "Sign in")));
}

function rate(queue, what) {
  const c = lastTick.queues && lastTick.queues[queue];
  return c ? ((c[what] || 0) * 1000 / lastTick.interval_ms).toFixed(1) : "0.0";
}

async function overviewView() {
  const infos = await api("/api/overview");
  const rows = infos.map((info) => {
    const f = info.fields, q = info.queue, paused = f.paused === 1;
    return h("tr", { "data-queue": q },
      h("td", {}, h("a", { href: "#/queue/" + enc(q) + "/pending" }, q)),
      STATES.map((s) => h("td", { class: "num", "data-state": s },
        h("a", { href: "#/queue/" + enc(q) + "/" + s }, String(f[s] || 0)))),
      h("td", { "data-field": "paused" }, h("span", { class: "badge " + (paused ? "paused" : "running") }, paused ? "paused" : "running")),
      h("td", { class: "num", "data-field": "oldest" }, f.oldest_pending_age_ms > 0 ? age(f.oldest_pending_age_ms) : "–"),
      h("td", { class: "num" }, rate(q, "completed")),
      h("td", { class: "num" }, rate(q, "failed")),
      h("td", {},
        paused
          ? actionButton("resume", "/api/queues/" + enc(q) + "/resume", {}, () => "resumed " + q)
          : actionButton("pause", "/api/queues/" + enc(q) + "/pause", {}, () => "paused " + q),
        " ",
        f.dead > 0 ? actionButton("requeue dead", "/api/queues/" + enc(q) + "/requeue-dead", {}, (r) => "requeued " + r.requeued + " job(s)") : null));
  });
  const table = h("table", { id: "queues" },
    h("thead", {}, h("tr", {}, h("th", {}, "queue"), STATES.map((s) => h("th", { class: "num" }, s)),
      h("th", {}, "paused"), h("th", { class: "num" }, "oldest pending"), h("th", { class: "num" }, "done/s"),
      h("th", { class: "num" }, "failed/s"), h("th", {}, ""))),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: 14, class: "muted" }, "no queues yet"))));
  return h("div", {},
    h("h1", {}, "Queues"),
    h("section", {},
      h("div", { class: "legend" }, h("span", { class: "done" }, "completed / s"), h("span", { class: "fail" }, "failed attempts / s"),
        h("span", { class: "muted" }, "last 5 minutes, live")),
      h("canvas", { id: "chart", width: 1200, height: 200 })),
    h("section", {}, table),
    enqueueForm(infos.map((i) => i.queue)));
}

function enqueueForm(queues) {
  if (!session.actions || !session.signed_in) return null;
  const queue = h("input", { id: "enqueue-queue", placeholder: "queue", required: true, value: queues[0] || "" });
  const task = h("input", { id: "enqueue-task", placeholder: "task", required: true });
  const payload = h("input", { id: "enqueue-payload", placeholder: "{}", size: 40 });
  return h("section", {}, h("h2", {}, "Enqueue a job"),
    h("form", { id: "enqueue", class: "inline keep", "data-page": "overview", onsubmit: (e) => {
      e.preventDefault();
      act("/api/queues/" + enc(queue.value) + "/enqueue", { task: task.value, payload: payload.value || "{}" },
        (r) => "enqueued " + r.id);
    } }, queue, task, payload, h("button", { type: "submit" }, "Enqueue")));
}

async function queueView(queue, state, query) {
  const params = new URLSearchParams({ state, cursor: query.get("cursor") || "0", count: "20" });
  for (const k of ["task", "worker"]) if (query.get(k)) params.set(k, query.get(k));
  const page = await api("/api/queues/" + enc(queue) + "/jobs?" + params);
  const base = "#/queue/" + enc(queue) + "/";
  const filters = (cursor) => {
    const p = new URLSearchParams();
    if (cursor) p.set("cursor", cursor);
    for (const k of ["task", "worker"]) if (query.get(k)) p.set(k, query.get(k));
    const s = p.toString();
    return s ? "?" + s : "";
  };
  const filtered = Boolean(query.get("task") || query.get("worker"));
  const withError = state === "dead" || state === "retrying" || state === "cancelled";
  const rows = page.jobs.map((j) => h("tr", { "data-job": j.id },
    h("td", {}, h("a", { href: "#/job/" + enc(queue) + "/" + enc(j.id) }, h("code", {}, j.id))),
    h("td", {}, j.task),
    h("td", { class: "state-" + j.state }, j.state),
    h("td", { class: "num" }, j.attempt + "/" + j.max_attempts),
    h("td", {}, j.consumer || ""),
    h("td", {}, withError ? (j.error || "").split("\n")[0] : when(j.created_at)),
    h("td", {}, jobActions(queue, j))));
  const taskInput = h("input", { name: "task", placeholder: "task", value: query.get("task") || "" });
  const workerInput = h("input", { name: "worker", placeholder: "worker", value: query.get("worker") || "" });
  return h("div", {},
    h("h1", {}, "Queue ", h("code", {}, queue)),
    h("div", { class: "tabs" }, STATES.map((s) => h("a", { href: base + s + filters(), class: s === state ? "current" : null }, s))),
    h("form", { class: "filters keep", "data-page": "queue:" + queue + ":" + state, onsubmit: (e) => {
      e.preventDefault();
      const p = new URLSearchParams();
      if (taskInput.value) p.set("task", taskInput.value);
      if (workerInput.value) p.set("worker", workerInput.value);
      location.hash = base + state + (p.toString() ? "?" + p : "");
    } }, "Only", taskInput, workerInput, h("button", { type: "submit" }, "Filter"),
      h("span", { id: "filter-scope", class: "muted" }, filtered
        ? "(no index by task or worker: this page read " + page.read + " jobs, at most " + page.scan_limit + ", looking for 20 matches)"
        : "(the filters read at most " + page.scan_limit + " jobs per page)")),
    h("section", {}, h("table", { id: "jobs" },
      h("thead", {}, h("tr", {}, ["id", "task", "state", "attempt", "worker", withError ? "error" : "created", ""].map((t) => h("th", {}, t)))),
      h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: 7, class: "muted" }, filtered && page.cursor !== "0"
        ? "no matching " + state + " jobs among the " + page.read + " read: the next page goes on"
        : "no " + state + " jobs on this page")))),
      h("p", {}, page.cursor !== "0"
        ? h("a", { id: "next-page", href: base + state + filters(page.cursor) }, "next page →")
        : h("span", { class: "muted" }, "end of the list"))));
}

function jobActions(queue, j) {
  const path = "/api/queues/" + enc(queue) + "/jobs/" + enc(j.id) + "/";
  return [
    ["scheduled", "pending", "retrying", "waiting", "active"].includes(j.state)
      ? actionButton("cancel", path + "cancel", {}, (r) => "cancel: " + r.outcome) : null,
    j.state === "dead" ? actionButton("requeue", path + "requeue", {}, () => "requeued " + j.id) : null,
    actionButton("delete", path + "delete", {}, () => "deleted " + j.id, true),
  ];
}

function jsonText(text) {
  try { return JSON.stringify(JSON.parse(text), null, 2); } catch (e) { return text; }
}

async function jobView(queue, id) {
  const { job, batch } = await api("/api/queues/" + enc(queue) + "/jobs/" + enc(id));
  const x = job.extra || {};
  const link = (jid) => h("a", { href: "#/job/" + enc(queue) + "/" + enc(jid) }, h("code", {}, jid));
  const ids = (text) => { try { const v = JSON.parse(text); return Array.isArray(v) ? v : Object.keys(v); } catch (e) { return []; } };
  const progress = x.progress !== undefined ? Number(x.progress) : null;
  const progressBar = h("div", { class: "progress" }, h("div", {}));
  if (progress !== null) progressBar.firstChild.style.width = progress + "%";
  // From enqueue to the start of the current attempt (earlier attempts included).
  const waited = job.started_at && job.created_at ? job.started_at - job.created_at : null;
  const rows = [
    ["state", h("span", { id: "job-state", class: "state-" + job.state }, job.state)],
    ["queue", h("a", { href: "#/queue/" + enc(queue) + "/" + job.state }, queue)],
    ["task", job.task],
    ["attempts", job.attempt + " of " + job.max_attempts],
    ["progress", progress === null ? "–" : h("span", { id: "job-progress" }, progressBar, progress + "%")],
    ["created", when(job.created_at)],
    ["due", x.run_at ? when(x.run_at) : null],
    ["started", when(job.started_at)],
    ["waited (created → started)", waited !== null ? age(waited) : "–"],
    ["finished", when(job.finished_at)],
    ["ran for", job.finished_at && job.started_at ? age(job.finished_at - job.started_at) : null],
    ["worker", job.consumer || "–"],
    ["timeout", age(job.timeout)],
    ["priority", x.priority],
    ["payload", h("pre", { id: "job-payload" }, jsonText(job.payload))],
    ["result", job.result !== null && job.result !== undefined ? h("pre", { id: "job-result" }, jsonText(job.result)) : null],
    ["error", job.error ? h("pre", { id: "job-error", class: "error" }, job.error) : null],
    ["parents", x.parents ? ids(x.parents).map((p) => [link(p), " "]) : null],
    ["children", x.children ? ids(x.children).map((c) => [link(c), " "]) : null],
    ["batch", batch ? batch.id + ": " + batch.done + "/" + batch.total + " done (" + batch.succeeded + " ok, " + batch.failed + " failed)" : x.batch],
    ["unique key", x.unique],
    ["schedule", x.schedule ? h("a", { id: "job-schedule", href: "#/schedules?" + new URLSearchParams({ queue, name: x.schedule }) }, x.schedule) : null],
  ].filter(([, v]) => v !== null && v !== undefined);
  const known = new Set(["progress", "run_at", "priority", "parents", "children", "batch", "unique", "schedule"]);
  const others = Object.entries(x).filter(([k]) => !known.has(k));
  return h("div", {},
    h("h1", {}, "Job ", h("code", {}, job.id)),
    h("section", {}, h("dl", { id: "job" }, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]),
      others.map(([k, v]) => [h("dt", {}, k), h("dd", {}, h("code", {}, v))]))),
    h("p", {}, jobActions(queue, job)));
}

async function workersView() {
  const queues = await api("/api/workers");
  return h("div", {}, h("h1", {}, "Workers"),
    queues.length ? queues.map((q) => h("section", { "data-queue": q.queue },
      h("h2", {}, h("a", { href: "#/queue/" + enc(q.queue) + "/active" }, q.queue)),
      q.workers.length ? h("table", {},
        h("thead", {}, h("tr", {}, ["worker", "last fetch", "holds", "job", "task", "since", "last heartbeat", "progress"].map((t) => h("th", {}, t)))),
        h("tbody", {}, q.workers.map((w) => {
          const first = [
            h("td", { rowspan: Math.max(1, w.jobs.length) }, h("a", { href: "#/queue/" + enc(q.queue) + "/active?worker=" + enc(w.name) }, w.name)),
            h("td", { rowspan: Math.max(1, w.jobs.length) }, w.idle_ms >= 9e15 ? "–" : age(w.idle_ms) + " ago"),
            h("td", { rowspan: Math.max(1, w.jobs.length), class: "num" }, String(w.pending)),
          ];
          const cells = (j) => [
            h("td", {}, h("a", { href: "#/job/" + enc(q.queue) + "/" + enc(j.id) }, h("code", {}, j.id))),
            h("td", {}, j.task), h("td", {}, when(j.started_at)), h("td", {}, when(j.heartbeat_at)),
            h("td", {}, j.progress !== null && j.progress !== undefined ? j.progress + "%" : "–"),
          ];
          if (!w.jobs.length) return [h("tr", { "data-worker": w.name }, first, h("td", { colspan: 5, class: "muted" }, "idle"))];
          return w.jobs.map((j, i) => h("tr", { "data-worker": w.name }, i === 0 ? first : null, cells(j)));
        }))) : h("p", { class: "muted" }, "no workers"),
      q.more_running ? h("p", { class: "muted" }, "more running jobs than shown") : null))
      : h("p", { class: "muted" }, "no queues yet"));
}

async function schedulesView(query) {
  const queues = await api("/api/schedules");
  // Linked from a job's page: that job's schedule is marked.
  const mark = (q, s) => q.queue === query.get("queue") && s.name === query.get("name");
  const withSchedules = queues.filter((q) => q.schedules.length);
  const gone = query.get("name") && !queues.some((q) => q.schedules.some((s) => mark(q, s)));
  return h("div", {}, h("h1", {}, "Schedules"),
    gone ? h("p", { id: "schedule-gone", class: "muted" },
      "Schedule " + query.get("name") + " of queue " + query.get("queue") + " no longer exists.") : null,
    withSchedules.length ? withSchedules.map((q) => h("section", { "data-queue": q.queue },
      h("h2", {}, q.queue),
      h("table", {},
        h("thead", {}, h("tr", {}, ["name", "when", "task", "next run", "last run", "definition"].map((t) => h("th", {}, t)))),
        h("tbody", {}, q.schedules.map((s) => h("tr", { "data-schedule": s.name, class: mark(q, s) ? "selected" : null },
          h("td", {}, s.name),
          h("td", {}, s.every ? "every " + age(Number(s.every)) : "cron " + s.cron),
          h("td", {}, s.task),
          h("td", {}, when(s.next_run)),
          h("td", {}, s.last_run ? when(s.last_run) : "never"),
          h("td", {}, h("code", {}, JSON.stringify(s)))))))))
      : h("p", { class: "muted" }, "no schedules"));
}

// ---- the live chart --------------------------------------------------------------------------

function drawChart() {
  const canvas = document.getElementById("chart");
  if (!canvas) return;
  const ctx = canvas.getContext("2d");
  const w = canvas.width, hgt = canvas.height, pad = 30;
  ctx.clearRect(0, 0, w, hgt);
  const series = (what) => ticks.map((t) => Object.values(t.queues).reduce((n, c) => n + (c[what] || 0), 0) * 1000 / t.interval_ms);
  const done = series("completed"), failed = series("failed");
  const max = Math.max(1, ...done, ...failed);
  ctx.strokeStyle = "#dde1e8"; ctx.fillStyle = "#6b7385"; ctx.font = "12px system-ui";
  ctx.beginPath(); ctx.moveTo(pad, 5); ctx.lineTo(pad, hgt - pad); ctx.lineTo(w - 5, hgt - pad); ctx.stroke();
  ctx.fillText(max.toFixed(1) + "/s", 0, 14);
  ctx.fillText("0", 15, hgt - pad);
  ctx.fillText("now", w - 30, hgt - 10);
  ctx.fillText("-" + Math.round(HISTORY * (ticks[0] ? ticks[0].interval_ms : 500) / 1000 / 60) + " min", pad, hgt - 10);
  const line = (values, color) => {
    ctx.strokeStyle = color; ctx.lineWidth = 2; ctx.beginPath();
    values.forEach((v, i) => {
      const x = pad + (w - pad - 5) * (HISTORY - values.length + i) / (HISTORY - 1);
      const y = hgt - pad - (hgt - pad - 10) * v / max;
      if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    });
    ctx.stroke();
  };
  line(done, "#1f8a4c");
  line(failed, "#c23a3a");
}

function follow() {
  const source = new EventSource("/api/live");
  source.addEventListener("history", (e) => {
    ticks.length = 0;
    ticks.push(...JSON.parse(e.data));
    drawChart();
  });
  source.addEventListener("tick", (e) => {
    const tick = JSON.parse(e.data);
    ticks.push(tick);
    if (ticks.length > HISTORY) ticks.shift();
    lastTick = tick;
    drawChart();
    // Something happened: redraw the page from fresh figures.
    if (Object.keys(tick.queues).length) refresh();
  });
}

// ---- start -----------------------------------------------------------------------------------

async function start() {
  session = await api("/api/session");
  document.getElementById("mode").textContent =
    !session.actions ? "read-only" : session.signed_in ? "actions enabled" : "sign in to act";
  await refresh();
  if (session.signed_in) follow();
}

document.getElementById("search").addEventListener("submit", async (e) => {
  e.preventDefault();
  const id = document.getElementById("search-id").value.trim();
  try {
    const found = await api("/api/find/" + enc(id));
    location.hash = "#/job/" + enc(found.queue) + "/" + enc(found.id);
  } catch (err) {
    notice(err.message, true);
  }
});
window.addEventListener("hashchange", () => { notice("", false); refresh(); });
// A slow fallback for what sends no event (a lease running out, a cluster node's events).
setInterval(() => { if (session.signed_in) refresh(); }, 5000);
start().catch((e) => notice(e.message, true));
