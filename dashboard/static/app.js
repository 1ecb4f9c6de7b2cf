// paylimit dashboard: polls /api/snapshot once a second and draws the page; no libraries.
"use strict";

const $ = (id) => document.getElementById(id);
const seen = new Set(); // alert ids already on the page, to flash the new ones
let first = true;

function fmt(n, digits = 0) {
  if (n === null || n === undefined) return "–";
  return Number(n).toLocaleString("en-US", { maximumFractionDigits: digits });
}

function el(tag, attrs = {}, text = "") {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== "") e.textContent = text;
  return e;
}

// A line chart of up to two series on a canvas, scaled to its own maximum.
function drawChart(canvas, seriesList) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (canvas.width !== w * dpr || canvas.height !== h * dpr) { canvas.width = w * dpr; canvas.height = h * dpr; }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const values = seriesList.flatMap((s) => s.values).filter((v) => v !== null && v !== undefined);
  const max = Math.max(1, ...values) * 1.1;
  const left = 44, bottom = h - 14, top = 6, n = Math.max(2, ...seriesList.map((s) => s.values.length));
  ctx.strokeStyle = "#e3e6ec"; ctx.fillStyle = "#6b7385"; ctx.font = "10px system-ui, sans-serif"; ctx.lineWidth = 1;
  for (const f of [0, 0.5, 1]) {
    const y = bottom - f * (bottom - top);
    ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(w, y); ctx.stroke();
    ctx.fillText(fmt(f * max, max < 10 ? 1 : 0), 2, y + 3);
  }
  ctx.fillText(`${n}s ago`, left, h - 2); ctx.fillText("now", w - 22, h - 2);
  for (const s of seriesList) {
    ctx.strokeStyle = s.color; ctx.fillStyle = s.color; ctx.lineWidth = 1.6; ctx.beginPath();
    let pen = false;
    s.values.forEach((v, i) => {
      if (v === null || v === undefined) { pen = false; return; }
      const x = left + (i + n - s.values.length) * (w - left) / (n - 1);
      const y = bottom - (v / max) * (bottom - top);
      if (pen) ctx.lineTo(x, y); else ctx.moveTo(x, y);
      const alone = (i === 0 || s.values[i - 1] == null) && (i === s.values.length - 1 || s.values[i + 1] == null);
      if (alone) ctx.fillRect(x - 1.5, y - 1.5, 3, 3); // a lone sample would draw no line
      pen = true;
    });
    ctx.stroke();
  }
}

const last = (arr) => (arr && arr.length ? arr[arr.length - 1] : null);

function renderTiles(snap) {
  const s = snap.series, t = snap.totals;
  $("t-in").textContent = fmt(last(s.in_rate), 1);
  $("t-processed").textContent = fmt(last(s.processed_rate), 1);
  $("t-lag").textContent = fmt(t.worker_lag);
  $("t-nlag").textContent = fmt(t.notifier_lag);
  $("t-dlq").textContent = fmt(t.dead_lettered);
  $("t-alerts").textContent = `${fmt(t.alerts_sent)} / ${fmt(t.shadow_alerts_sent)}`;
  const l = snap.latency;
  $("t-latency").textContent = l.n ? `${fmt(l.p50_ms)} / ${fmt(l.p99_ms)} ms` : "–";
  const css = getComputedStyle(document.documentElement);
  const a = css.getPropertyValue("--in"), b = css.getPropertyValue("--out");
  drawChart($("c-rate"), [{ values: s.in_rate, color: a }, { values: s.processed_rate, color: b }]);
  drawChart($("c-lag"), [{ values: s.worker_lag, color: a }, { values: s.notifier_lag, color: b }]);
  drawChart($("c-latency"), [{ values: s.p50, color: a }, { values: s.p99, color: b }]);
}

function renderSources(snap) {
  const box = $("sources");
  box.replaceChildren();
  for (const [name, err] of Object.entries(snap.errors)) {
    const pill = el("span", { title: err || "ok", class: err ? "down" : "" }, name);
    box.appendChild(pill);
  }
  $("app-id").textContent = snap.app_id;
  $("updated").textContent = `updated ${new Date(snap.now).toLocaleTimeString()}`;
}

function renderUsers(id, users) {
  const list = $(id);
  list.replaceChildren(...users.map((u) => {
    const li = el("li", { "data-user": u.user_id }, u.user_id);
    li.appendChild(el("span", { class: "n" }, `${u.count} / ${u.limit}`));
    return li;
  }));
}

// The day picker: "" follows the server's default (today, or the latest day of a replay).
function renderDays(users) {
  const select = $("users-day");
  const wanted = ["", ...users.days];
  const have = Array.from(select.options).map((o) => o.value);
  if (wanted.join() !== have.join()) {
    const chosen = select.value;
    select.replaceChildren(...wanted.map((d) => el("option", { value: d }, d)));
    select.value = wanted.includes(chosen) ? chosen : "";
  }
  select.options[0].textContent = select.value ? "default" : `${users.day} (default)`;
}

function renderDeadLetters(byReason) {
  const entries = Object.entries(byReason).sort((a, b) => b[1] - a[1]);
  const max = Math.max(1, ...entries.map((e) => e[1]));
  $("dead-letters").replaceChildren(...entries.map(([reason, n]) => {
    const row = el("div", { class: "dl-row", "data-reason": reason });
    row.appendChild(el("span", {}, reason));
    const bar = el("div", { class: "b" }); bar.style.width = `${(100 * n) / max}%`;
    row.appendChild(bar);
    row.appendChild(el("span", {}, fmt(n)));
    return row;
  }));
}

function renderNotifications(list) {
  const rows = list.map((n) => {
    const tr = el("tr", { "data-alert-id": n.alert_id, "data-user": n.user_id, "data-rule": n.rule || "daily_count",
                          "data-tier": n.tier || "alert" });
    if (!first && !seen.has(n.alert_id)) tr.className = "fresh";
    seen.add(n.alert_id);
    tr.appendChild(el("td", {}, new Date(n.delivered_at).toLocaleTimeString()));
    tr.appendChild(el("td", { class: "user" }, n.user_id));
    tr.appendChild(el("td", n.late ? { class: "late" } : {}, n.local_date));
    // a heads-up (tier warn) vs over the limit (tier alert), per rule; v1 alerts are daily_count's
    const rule = n.rule || "daily_count", over = (n.tier || "alert") === "alert";
    tr.appendChild(el("td", { class: over ? "over" : "warn" }, `${rule} ${over ? "over" : "warn"}`));
    tr.appendChild(el("td", {}, `${n.value ?? n.count} / ${n.limit}`));
    tr.appendChild(el("td", { class: "tx" }, n.crossing_transaction_id));
    tr.appendChild(el("td", {}, `${fmt(n.latency_ms)} ms`));
    return tr;
  });
  $("notifications").tBodies[0].replaceChildren(...rows);
}

// Partitions whose progress stopped: shown while any worker reports one, never hidden behind a panel.
function renderStalled(stalled) {
  const parts = Object.entries(stalled.partitions).sort((a, b) => a[0] - b[0]);
  $("stalled").hidden = parts.length === 0;
  $("stalled-partitions").textContent = parts.map(([p, s]) => `partition ${p} for ${fmt(s)} s`).join(", ");
  $("stalled-reasons").textContent = Object.keys(stalled.reasons).join("; ");
}

async function refresh() {
  try {
    const day = $("users-day").value;
    const resp = await fetch("/api/snapshot" + (day ? `?day=${day}` : ""), { cache: "no-store" });
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    const snap = await resp.json();
    renderSources(snap);
    renderTiles(snap);
    renderDays(snap.users);
    renderUsers("users-top", snap.users.top);
    renderUsers("users-near", snap.users.near);
    renderUsers("users-over", snap.users.over);
    $("tracked").textContent = `(${snap.users.tracked} users tracked)`;
    renderDeadLetters(snap.dead_letters);
    renderStalled(snap.stalled);
    renderNotifications(snap.notifications);
    first = false;
  } catch (err) {
    $("updated").textContent = `dashboard unreachable (${err.message}); retrying`;
  } finally {
    setTimeout(refresh, 1000);
  }
}

async function lookUp(event) {
  event.preventDefault();
  const user = $("search-user").value.trim();
  const date = $("search-date").value;
  if (!user) return;
  const url = `/api/usage/${encodeURIComponent(user)}` + (date ? `?date=${date}` : "");
  $("usage-error").hidden = true;
  try {
    const resp = await fetch(url, { cache: "no-store" });
    const u = await resp.json();
    if (!resp.ok) throw new Error(u.error || `HTTP ${resp.status}`);
    $("usage-user").textContent = u.user_id;
    $("usage-count").textContent = u.count;
    $("usage-date").textContent = u.local_date;
    $("usage-zone").textContent = u.timezone;
    $("usage-limit").textContent = u.limit;
    $("usage-remaining").textContent = u.remaining;
    $("usage-status").textContent = u.over_limit ? "Over the limit." : "";
    const bar = $("usage-bar");
    bar.style.width = `${Math.min(100, (100 * u.count) / Math.max(1, u.limit))}%`;
    bar.className = u.over_limit ? "over" : (u.remaining <= 0.2 * u.limit ? "near" : "");
    $("usage-result").hidden = false;
    $("usage-result").dataset.user = u.user_id;
  } catch (err) {
    $("usage-result").hidden = true;
    $("usage-error").textContent = `Could not look up ${user}: ${err.message}`;
    $("usage-error").hidden = false;
  }
}

$("search").addEventListener("submit", lookUp);
refresh();
