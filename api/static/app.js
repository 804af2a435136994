// chiso766 dashboard: a live leaderboard and unit pages over the read-only API. No framework, no CDN.
"use strict";

const LABELS = {
  vi: {
    title: "Chỉ số 766", period: "Kỳ", peer_group: "Nhóm so sánh", alerts: "Cảnh báo", as_of: "Tính đến",
    live: "Trực tiếp", stalled: "Ngừng cập nhật", offline: "Mất kết nối", rank: "Hạng", unit: "Đơn vị", code: "Mã", total: "Tổng điểm",
    groups: "Sáu nhóm chỉ tiêu", change: "Thay đổi", indicators: "Chỉ tiêu", numerator: "Tử số",
    denominator: "Mẫu số", score: "Điểm", max: "Tối đa", trend: "Xu hướng theo tháng", children: "Đơn vị trực thuộc",
    overdue: "Hồ sơ quá hạn", approaching: "Hồ sơ sắp đến hạn", dossier: "Hồ sơ", procedure: "Thủ tục",
    officer: "Cán bộ", due: "Hạn xử lý", stake: "Điểm có thể mất", officers: "Cán bộ và kết quả xử lý",
    points_cost: "Điểm bị trừ", none: "Không có", back: "← Bảng xếp hạng", loading: "Đang tải…",
    provinces: "Tỉnh, thành phố", ministries: "Bộ, ngành", agencies: "Sở, ban, ngành", communes: "Xã, phường",
    approaching_kind: "Sắp đến hạn", apology_due_kind: "Cần xin lỗi", overdue_kind: "Quá hạn",
    steps_on_time: "Đúng hạn", steps_late: "Trễ hạn", overdue_held: "Đang quá hạn", lang: "English",
    quality: "Chất lượng dữ liệu", no_problems: "Không có vấn đề", problem: "Vấn đề", reason: "Lý do", count: "Số lượng",
    rejected: "Sự kiện bị từ chối (cả hệ thống)", in_period: "Trong kỳ", all_time: "Từ đầu",
    counts_only: "Chỉ có số lượng; lệnh chiso766 check HISTORY liệt kê mã hồ sơ.",
  },
  en: {
    title: "Decision 766 index", period: "Period", peer_group: "Peer group", alerts: "Alerts", as_of: "As of",
    live: "Live", stalled: "Stalled", offline: "Offline", rank: "Rank", unit: "Unit", code: "Code", total: "Total",
    groups: "Six groups", change: "Change", indicators: "Indicators", numerator: "Numerator",
    denominator: "Denominator", score: "Score", max: "Max", trend: "Monthly trend", children: "Child units",
    overdue: "Overdue dossiers", approaching: "Dossiers approaching due", dossier: "Dossier", procedure: "Procedure",
    officer: "Officer", due: "Due", stake: "Points at stake", officers: "Officers and their tallies",
    points_cost: "Points cost", none: "None", back: "← Leaderboard", loading: "Loading…",
    provinces: "Provinces", ministries: "Ministries", agencies: "Agencies", communes: "Communes",
    approaching_kind: "Approaching", apology_due_kind: "Apology due", overdue_kind: "Overdue",
    steps_on_time: "On time", steps_late: "Late", overdue_held: "Overdue held", lang: "Tiếng Việt",
    quality: "Data quality", no_problems: "No problems", problem: "Problem", reason: "Reason", count: "Count",
    rejected: "Refused events (whole namespace)", in_period: "In period", all_time: "All time",
    counts_only: "Counts only; chiso766 check HISTORY lists the dossier codes.",
  },
};
const GROUPS = ["CKMB", "TDGQ", "CLGQ", "TTTT", "MDSH", "MDHL"];
const state = { lang: localStorage.getItem("chiso766.lang") || "vi", period: null, group: null, previous: {},
                previousRank: {},
                groupMax: {}, groupNames: {} };
const $ = (selector) => document.querySelector(selector);
const t = (key) => LABELS[state.lang][key] ?? key;
const esc = (value) => String(value ?? "").replace(/[&<>"']/g,
  (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const num = (value) => value == null ? "–" : Number(value).toLocaleString(state.lang === "vi" ? "vi-VN" : "en-GB",
  { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const whole = (value) => Number(value ?? 0).toLocaleString(state.lang === "vi" ? "vi-VN" : "en-GB");
const when = (iso) => iso ? new Date(iso).toLocaleString(state.lang === "vi" ? "vi-VN" : "en-GB",
  { timeZone: "Asia/Ho_Chi_Minh", dateStyle: "short", timeStyle: "short" }) : "–";

async function api(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" } });
  const body = await response.json();
  if (!response.ok) throw new Error(body.detail || body.error || response.statusText);
  return body;
}

function groupLabel(code) {
  const [kind, parent] = code.split(":");
  return parent ? `${t(kind)} ${parent}` : t(kind);
}

function applyLabels() {
  document.documentElement.lang = state.lang;
  document.querySelectorAll("[data-i18n]").forEach((node) => { node.textContent = t(node.dataset.i18n); });
  $("#lang").textContent = t("lang");
  const badge = $("#live").classList;
  $("#live").textContent = !badge.contains("on") ? t("offline") : badge.contains("stalled") ? t("stalled") : t("live");
}

async function loadPeriods() {
  const { periods } = await api("/api/periods");
  const picker = $("#period");
  picker.innerHTML = periods.map((p) => `<option>${esc(p)}</option>`).join("");
  const years = periods.filter((p) => p.startsWith("year:"));
  state.period = state.period && periods.includes(state.period) ? state.period
    : (years[years.length - 1] || periods[periods.length - 1] || null);
  if (state.period) picker.value = state.period;
}

async function loadGroups() {
  if (!state.period) return;
  const { groups, units } = await api(`/api/groups?period=${encodeURIComponent(state.period)}`);
  const picker = $("#group");
  picker.innerHTML = groups.map((g) => `<option value="${esc(g)}">${esc(groupLabel(g))}</option>`).join("");
  // By default the largest peer group: a province's own page is more useful as its agencies' board.
  state.group = state.group && groups.includes(state.group) ? state.group
    : groups.reduce((best, g) => (units[g] > units[best] ? g : best), groups[0]);
  picker.value = state.group;
}

function groupBars(groups) {
  return `<div class="bars" title="${GROUPS.map((g) => `${g} ${num(groups[g])}`).join(" · ")}">` +
    GROUPS.map((g) => `<span data-group="${g}" data-height="${Math.max(1, 22 * (groups[g] || 0) /
      (state.groupMax[g] || 22))}"></span>`).join("") + "</div>";
}

// Bar heights and meter widths go through the CSSOM: the Content-Security-Policy forbids inline
// style attributes in markup, not styles set from the page's own script.
function sizeBars(root) {
  root.querySelectorAll("[data-height]").forEach((node) => { node.style.height = `${node.dataset.height}px`; });
  root.querySelectorAll("[data-width]").forEach((node) => { node.style.width = `${node.dataset.width}%`; });
}

// Rank movement since the previous period; when there is none, since this page last drew the row.
function movement(row) {
  const seen = state.previousRank[row.code];
  const moved = row.movement ?? (seen === undefined ? null : seen - row.rank);
  state.previousRank[row.code] = row.rank;
  if (moved == null) return '<span class="same">·</span>';
  if (moved > 0) return `<span class="up" title="+${moved}">▲ ${moved}</span>`;
  if (moved < 0) return `<span class="down" title="${moved}">▼ ${-moved}</span>`;
  return '<span class="same">＝</span>';
}

async function renderLeaderboard() {
  $("#group-picker").hidden = false;
  if (!state.period) { $("#view").innerHTML = `<p class="muted">${t("loading")}</p>`; return; }
  const board = await api(`/api/leaderboard?period=${encodeURIComponent(state.period)}` +
    `&group=${encodeURIComponent(state.group)}&size=200`);
  $("#as-of").textContent = `${t("as_of")} ${when(board.as_of)}`;
  const rows = board.units.map((row) => {
    const changed = state.previous[row.code] !== undefined && state.previous[row.code] !== row.total;
    state.previous[row.code] = row.total;
    return `<tr data-code="${esc(row.code)}" class="${changed ? "flash" : ""}">
      <td class="num">${esc(row.rank)}</td><td>${movement(row)}</td>
      <td><a href="#/unit/${encodeURIComponent(row.code)}">${esc(row.name)}</a> <span class="muted">${esc(row.code)}</span></td>
      <td class="num total-cell">${num(row.total)}</td>
      <td class="num ${row.change > 0 ? "up" : row.change < 0 ? "down" : ""}">${row.change == null ? "–" :
        (row.change > 0 ? "+" : "") + num(row.change)}</td>
      <td>${groupBars(row.groups)}</td></tr>`;
  }).join("");
  $("#view").innerHTML = `<h2 id="board-title">${esc(groupLabel(board.group))} · ${esc(board.period)}</h2>
    <table id="leaderboard"><thead><tr><th class="num">${t("rank")}</th><th></th><th>${t("unit")}</th>
    <th class="num">${t("total")}</th><th class="num">${t("change")}</th><th>${t("groups")}</th></tr></thead>
    <tbody>${rows}</tbody></table>`;
  sizeBars($("#view"));
}

function trendChart(points) {
  if (!points.length) return `<p class="muted">${t("none")}</p>`;
  const width = 600, height = 160, pad = 28;
  const x = (i) => pad + (points.length === 1 ? 0 : i * (width - 2 * pad) / (points.length - 1));
  const y = (v) => height - pad - v * (height - 2 * pad) / 100;
  const path = points.map((p, i) => `${x(i)},${y(p.total)}`).join(" ");
  return `<svg class="trend" viewBox="0 0 ${width} ${height}" role="img" aria-label="${t("trend")}">
    ${[0, 50, 100].map((v) => `<line x1="${pad}" x2="${width - pad}" y1="${y(v)}" y2="${y(v)}" stroke="#dde3ea"/>
      <text x="2" y="${y(v) + 4}" font-size="10" fill="#5b6b7c">${v}</text>`).join("")}
    <polyline points="${path}" fill="none" stroke="#2f6fb3" stroke-width="2"/>
    ${points.map((p, i) => `<circle cx="${x(i)}" cy="${y(p.total)}" r="3" fill="#2f6fb3"><title>${esc(p.period)}: ${num(p.total)}</title></circle>
      <text x="${x(i)}" y="${height - 8}" font-size="10" text-anchor="middle" fill="#5b6b7c">${esc(p.period.slice(-2))}</text>`).join("")}
  </svg>`;
}

async function renderUnit(code) {
  $("#group-picker").hidden = true;
  const period = encodeURIComponent(state.period);
  const [unit, overdue, approaching, officers, quality] = await Promise.all([
    api(`/api/units/${encodeURIComponent(code)}?period=${period}`),
    api(`/api/units/${encodeURIComponent(code)}/dossiers?list=overdue&size=20`),
    api(`/api/units/${encodeURIComponent(code)}/dossiers?list=approaching&size=20`),
    api(`/api/units/${encodeURIComponent(code)}/officers?period=${period}`),
    api(`/api/quality?period=${period}&unit=${encodeURIComponent(code)}`),
  ]);
  $("#as-of").textContent = `${t("as_of")} ${when(unit.as_of)}`;
  const name = (g) => state.lang === "vi" ? g.name_vi : g.name_en;
  const dossierTable = (list) => list.dossiers.length ? `<table class="dossiers"><thead><tr><th>${t("dossier")}</th>
      <th>${t("procedure")}</th><th>${t("officer")}</th><th>${t("due")}</th><th class="num">${t("stake")}</th></tr></thead>
      <tbody>${list.dossiers.map((d) => `<tr><td>${esc(d.dossier)}</td><td>${esc(d.procedure)}</td>
      <td>${esc(d.officer)}</td><td>${when(d.due)}</td><td class="num">${num(d.points_at_stake)}</td></tr>`).join("")}
      </tbody></table><p class="muted">${list.total} · ${t("dossier").toLowerCase()}</p>` : `<p class="muted">${t("none")}</p>`;
  $("#view").innerHTML = `<p><a href="#/">${t("back")}</a></p>
    <h2 id="unit-title">${esc(unit.name)} <span class="muted">${esc(unit.code)} · ${esc(unit.period)}</span></h2>
    <p><span class="total" id="unit-total">${num(unit.total)}</span> / 100 · ${t("rank")} ${esc(unit.rank ?? "–")}
      · ${t("stake")}: ${num(unit.points_at_stake)}</p>
    <h3>${t("groups")}</h3>
    ${unit.groups.map((g) => `<div class="meter" data-group="${g.code}"><span>${esc(g.code)} · ${esc(name(g))}</span>
      <div class="track"><div class="fill" data-width="${100 * g.score / g.max}"></div></div>
      <span class="num">${num(g.score)} / ${num(g.max)}</span></div>`).join("")}
    <h3>${t("trend")}</h3>${trendChart(unit.trend)}
    <h3>${t("indicators")}</h3>
    <table id="indicators"><thead><tr><th>${t("code")}</th><th></th><th class="num">${t("numerator")}</th>
      <th class="num">${t("denominator")}</th><th class="num">${t("score")}</th><th class="num">${t("max")}</th></tr></thead>
      <tbody>${unit.indicators.map((i) => `<tr><td>${esc(i.ref)}</td><td>${esc(i.code)}</td>
      <td class="num">${i.numerator}</td><td class="num">${i.denominator}</td><td class="num">${num(i.score)}</td>
      <td class="num">${num(i.max)}</td></tr>`).join("")}</tbody></table>
    <h3>${t("overdue")}</h3>${dossierTable(overdue)}
    <h3>${t("approaching")}</h3>${dossierTable(approaching)}
    <h3>${t("officers")}</h3>${officers.officers.length ? `<table><thead><tr><th>${t("officer")}</th>
      <th class="num">${t("steps_on_time")}</th><th class="num">${t("steps_late")}</th><th class="num">${t("overdue_held")}</th>
      <th class="num">${t("points_cost")}</th></tr></thead><tbody>${officers.officers.map((o) => `<tr><td>${esc(o.officer)}</td>
      <td class="num">${o.steps_on_time ?? 0}</td><td class="num">${o.steps_late ?? 0}</td><td class="num">${o.overdue_held ?? 0}</td>
      <td class="num">${num(o.points_cost)}</td></tr>`).join("")}</tbody></table>` : `<p class="muted">${t("none")}</p>`}
    <div id="plan-panel"></div>
    <p><a id="reconcile-link" href="#/reconcile/${encodeURIComponent(code)}">${t("reconcile")} →</a></p>
    ${qualityPanel(quality, code)}
    ${unit.children.length ? `<h3>${t("children")}</h3><table><tbody>${unit.children.map((c) => `<tr>
      <td><a href="#/unit/${encodeURIComponent(c.code)}">${esc(c.name)}</a> <span class="muted">${esc(c.code)}</span></td>
      <td class="num">${num(c.total)}</td></tr>`).join("")}</tbody></table>` : ""}`;
  await window.chiso766Portal.renderPlanPanel(code);
  sizeBars($("#view"));
}

// The unit's data-quality findings (its own row: pooled over everything below it, like its score)
// and the events the workers refused, which belong to no unit.
function qualityPanel(quality, code) {
  const label = (problem) => quality.labels[problem]?.[state.lang] ?? problem;
  const own = quality.units.find((row) => row.code === code);
  const findings = Object.entries(own ? own.findings : {});
  const reasons = [...new Set([...Object.keys(quality.rejected), ...Object.keys(quality.rejected_all_time)])].sort();
  const none = `<p class="muted">${t("no_problems")}</p>`;
  return `<div id="quality"><h3>${t("quality")}</h3>
    ${findings.length ? `<table id="quality-findings"><thead><tr><th>${t("problem")}</th><th></th>
      <th class="num">${t("count")}</th></tr></thead><tbody>${findings.map(([problem, count]) => `<tr>
      <td>${esc(label(problem))}</td><td class="muted">${esc(problem)}</td><td class="num">${whole(count)}</td></tr>`).join("")}
      </tbody></table>` : none}
    <h4>${t("rejected")}</h4>
    ${reasons.length ? `<table id="quality-rejected"><thead><tr><th>${t("reason")}</th><th></th>
      <th class="num">${t("in_period")}</th><th class="num">${t("all_time")}</th></tr></thead><tbody>
      ${reasons.map((reason) => `<tr><td>${esc(label(reason))}</td><td class="muted">${esc(reason)}</td>
      <td class="num">${whole(quality.rejected[reason])}</td><td class="num">${whole(quality.rejected_all_time[reason])}</td>
      </tr>`).join("")}</tbody></table>` : none}
    <p class="muted note">${t("counts_only")}</p></div>`;
}

function alertItem(alert) {
  return `<li><span class="kind ${esc(alert.kind)}">${esc(t(`${alert.kind}_kind`))}</span>
    <strong>${esc(alert.dossier)}</strong> · ${esc(alert.unit)} · ${esc(alert.officer || "")}<br>
    <span class="muted">${t("due")} ${when(alert.due)} · ${t("stake")} ${num(alert.points_at_stake)}</span></li>`;
}

async function loadAlerts() {
  const unit = currentUnit();
  const { alerts } = await api(`/api/alerts?limit=30${unit ? `&unit=${encodeURIComponent(unit)}` : ""}`);
  $("#alerts").innerHTML = alerts.map(alertItem).join("");
}

function currentUnit() {
  const match = location.hash.match(/^#\/unit\/(.+)$/);
  return match ? decodeURIComponent(match[1]) : null;
}

async function render() {
  try {
    const unit = currentUnit();
    const reconciling = location.hash.match(/^#\/reconcile\/(.+)$/);
    if (reconciling) await window.chiso766Portal.renderReconcile(decodeURIComponent(reconciling[1]));
    else if (unit) await renderUnit(unit); else await renderLeaderboard();
    await loadAlerts();
  } catch (error) {
    $("#view").innerHTML = `<p class="error">${esc(error.message)}</p>`;
  }
}

let pending = null;
function refreshSoon() {
  if (pending) return;
  pending = setTimeout(async () => { pending = null; await render(); }, 300);
}

// Connected is not advancing: the worker's heartbeat says whether scores still move (a page once
// said "Trực tiếp" over a worker that had stopped for good).
async function watchWorker() {
  try {
    const health = await api("/api/health");
    $("#live").classList.toggle("stalled", health.worker_state === "stalled" || !health.worker);
    applyLabels();
  } catch (error) { /* unreachable: the event stream's own error already says offline */ }
}

function showLive(on) {
  $("#live").className = on ? "live on" : "live off";
  applyLabels();
  if (on) watchWorker();
}

// An EventSource retries by itself after a dropped connection, but gives up for good on an answer
// that is not 200 (503 while Redis is down or every stream is taken, 429 past this address's
// streams): then this page tries again, waiting longer each time up to a minute.
let reconnectDelay = 2000;
let connectedBefore = false;
function connect() {
  const source = new EventSource("/api/live");
  source.onopen = () => {
    reconnectDelay = 2000;
    showLive(true);
    if (connectedBefore) refreshSoon();  // events sent while it was away are lost: redraw
    connectedBefore = true;
  };
  source.onerror = () => {
    showLive(false);
    if (source.readyState === EventSource.CLOSED) {
      setTimeout(connect, reconnectDelay);
      reconnectDelay = Math.min(60000, reconnectDelay * 2);
    }
  };
  // The server says when Redis goes away and when it is back, and when this page fell behind and
  // events were skipped: either way what is shown may be stale, so redraw.
  source.addEventListener("status", (event) => {
    const status = JSON.parse(event.data);
    if (status.projection === "unavailable") showLive(false);
    if (status.projection === "available") { showLive(true); refreshSoon(); }
    if (status.stream === "behind") refreshSoon();
  });
  source.addEventListener("scores", async (event) => {
    const { period } = JSON.parse(event.data);
    if (!state.period) { await loadPeriods(); await loadGroups(); }
    if (period === state.period) refreshSoon();
  });
  source.addEventListener("alert", (event) => {
    const alert = JSON.parse(event.data);
    const unit = currentUnit();
    if (unit && alert.unit !== unit) return;
    $("#alerts").insertAdjacentHTML("afterbegin", alertItem(alert));
    while ($("#alerts").children.length > 50) $("#alerts").lastElementChild.remove();
  });
}

async function start() {
  const params = new URLSearchParams(location.search);
  if (params.get("lang") in LABELS) state.lang = params.get("lang");
  applyLabels();
  $("#lang").addEventListener("click", () => {
    state.lang = state.lang === "vi" ? "en" : "vi";
    localStorage.setItem("chiso766.lang", state.lang);
    applyLabels();
    render();
  });
  $("#period").addEventListener("change", async (event) => { state.period = event.target.value; await loadGroups(); render(); });
  $("#group").addEventListener("change", (event) => { state.group = event.target.value; render(); });
  window.addEventListener("hashchange", render);
  const ruleset = await api("/api/ruleset");
  ruleset.groups.forEach((g) => { state.groupMax[g.code] = g.max; });
  await loadPeriods();
  await loadGroups();
  await render();
  connect();
  watchWorker();
  setInterval(watchWorker, 5000);
}

start();
