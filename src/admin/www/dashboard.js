// dashboard.js - the mxgate dashboard: reads /api/* (same origin) and draws it.
// Every value from the daemon goes into the page as text (textContent), never as HTML.
"use strict";

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
                "#7f7f7f", "#bcbd22", "#17becf"];
const REFRESH_MS = 10000;

function $(id) { return document.getElementById(id); }

async function api(path) {
  const r = await fetch(path, {headers: {"Accept": "application/json"}, cache: "no-store"});
  if (!r.ok) throw new Error(path + ": HTTP " + r.status);
  return r.json();
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function row(tbody, cells, cls) {
  const tr = el("tr", null, cls);
  const numeric = c => typeof c === "number" || /^[0-9.]+%$|^[0-9]+\/[0-9]+$/.test(c);
  cells.forEach(c => tr.appendChild(el("td", c, numeric(c) ? "n" : "")));
  tbody.appendChild(tr);
  return tr;
}

function pct(p) { return p.toFixed(1) + "%"; }

function day(d) { return d.toISOString().slice(0, 10); }

// The Miyazaki table: connections, accepted, refused, and what each mechanism stopped.
function drawTable(table, t) {
  const tb = table.tBodies[0];
  tb.replaceChildren();
  row(tb, ["connections", t.connections, ""], "total").dataset.key = "connections";
  row(tb, ["messages accepted", t.accepted, ""]).dataset.key = "accepted";
  row(tb, ["connections refused", t.refused, pct(t.refused_percent)], "total").dataset.key =
      "refused";
  t.mechanisms.slice().sort((a, b) => b.stopped - a.stopped).forEach(m => {
    row(tb, [m.name, m.stopped, pct(m.percent)], "mech").dataset.key = "stopped." + m.name;
  });
  if (t.queue_corrupt) row(tb, ["queue files corrupt", t.queue_corrupt, ""]);
}

// Refusals per hour, one stacked bar per hour, on a canvas.
function drawChart(series) {
  const c = $("chart"), ctx = c.getContext("2d");
  const hours = series.hours, mechs = [];
  hours.forEach(h => Object.keys(h.stopped || {}).forEach(m => {
    if (!mechs.includes(m)) mechs.push(m);
  }));
  mechs.sort();
  const from = Date.parse(series.from) / 1000, to = Date.parse(series.to) / 1000;
  const n = Math.max(1, Math.round((to - from) / 3600));
  let max = 1;
  hours.forEach(h => {
    const sum = Object.values(h.stopped || {}).reduce((a, b) => a + b, 0);
    if (sum > max) max = sum;
  });
  const W = c.width, H = c.height, left = 40, bottom = 20, top = 10;
  const bw = (W - left - 10) / n;
  ctx.clearRect(0, 0, W, H);
  ctx.font = "11px sans-serif";
  ctx.fillStyle = "#555";
  ctx.strokeStyle = "#ccc";
  ctx.beginPath();
  ctx.moveTo(left, top);
  ctx.lineTo(left, H - bottom);
  ctx.lineTo(W - 5, H - bottom);
  ctx.stroke();
  ctx.fillText(String(max), 4, top + 10);
  ctx.fillText("0", 4, H - bottom);
  hours.forEach(h => {
    const i = Math.floor((h.t - from) / 3600);
    if (i < 0 || i >= n) return;
    let y = H - bottom;
    mechs.forEach((m, k) => {
      const v = (h.stopped || {})[m] || 0;
      const bh = (H - bottom - top) * v / max;
      ctx.fillStyle = COLORS[k % COLORS.length];
      ctx.fillRect(left + i * bw + 1, y - bh, Math.max(1, bw - 2), bh);
      y -= bh;
    });
  });
  ctx.fillStyle = "#555";
  for (let i = 0; i < n; i += 6) {
    const d = new Date((from + i * 3600) * 1000);
    ctx.fillText(String(d.getUTCHours()).padStart(2, "0") + "h", left + i * bw, H - 5);
  }
  const legend = $("legend");
  legend.replaceChildren();
  mechs.forEach((m, k) => {
    const li = el("li"), sw = el("span", null, "swatch");
    sw.style.background = COLORS[k % COLORS.length];
    li.appendChild(sw);
    li.appendChild(document.createTextNode(m));
    legend.appendChild(li);
  });
  c.dataset.mechanisms = mechs.join(",");
}

function drawQueue(q) {
  const tb = $("queue").tBodies[0];
  tb.replaceChildren();
  q.domains.slice().sort((a, b) => b.recipients - a.recipients).forEach(d => {
    row(tb, [d.domain, d.recipients, d.messages]).dataset.domain = d.domain;
  });
  let s = q.total.messages + " messages, " + q.total.recipients + " recipients";
  if (q.total.held) s += ", " + q.total.held + " held";
  if (q.total.oldest) s += ", oldest " + q.total.oldest;
  $("queue-total").textContent = "(" + s + ")";
  $("queue-total").dataset.messages = q.total.messages;
}

function drawBlocks(b, f) {
  const tb = $("blocks").tBodies[0];
  tb.replaceChildren();
  b.harvest.forEach(h => row(tb, [h.client, "harvest block", ""]));
  b.ratelimit.filter(r => r.over).forEach(r =>
    row(tb, [r.network, "rate limit (" + r.kind + ")", r.count + "/" + r.limit]));
  const p = $("flood");
  p.className = f.state === "flood" ? "flood" : "";
  p.textContent = f.state + (f.since ? " since " + new Date(f.since * 1000).toISOString() : "") +
      " \u2014 " + f.last + " bounces in the last " + f.interval + " s, " + f.current + " now";
  p.dataset.state = f.state;
}

function drawStatus(st) {
  $("host").textContent = st.hostname;
  $("status").textContent = "up since " + st.started + " \u00b7 " + st.sessions +
      " sessions \u00b7 queue " + st.queue.messages + " \u00b7 store " + st.store.status;
}

async function refresh() {
  const now = Math.floor(Date.now() / 1000);
  const from48 = now - now % 3600 - 47 * 3600;
  const [st, today, series, q, blocks, flood] = await Promise.all([
    api("/api/status"), api("/api/stats?from=today&to=today"),
    api("/api/stats/series?from=" + from48 + "&to=" + (now - now % 3600 + 3600)),
    api("/api/queue"), api("/api/blocks"), api("/api/flood")]);
  drawStatus(st);
  $("today-period").textContent = today.from.slice(0, 10) + " (UTC)";
  drawTable($("table-today"), today);
  drawChart(series);
  drawQueue(q);
  drawBlocks(blocks, flood);
  $("updated").textContent = "updated " + new Date().toISOString();
  document.body.dataset.loaded = "1";
}

async function showPeriod(ev) {
  if (ev) ev.preventDefault();
  const f = $("period-from").value, t = $("period-to").value;
  if (!f || !t) return;
  const end = day(new Date(Date.parse(t) + 86400000)); // "to" is inclusive on the page
  const table = await api("/api/stats?from=" + encodeURIComponent(f) + "&to=" +
                          encodeURIComponent(end));
  drawTable($("table-period"), table);
  $("table-period").dataset.period = f + "/" + t;
}

function start() {
  const today = new Date(), weekAgo = new Date(Date.now() - 6 * 86400000);
  $("period-from").value = day(weekAgo);
  $("period-to").value = day(today);
  $("period-form").addEventListener("submit", ev => showPeriod(ev).catch(report));
  showPeriod().catch(report);
  refresh().catch(report);
  setInterval(() => refresh().catch(report), REFRESH_MS);
}

function report(e) {
  $("status").textContent = "error: " + e.message;
  document.body.dataset.error = e.message;
}

document.addEventListener("DOMContentLoaded", start);
