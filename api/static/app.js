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
    band: "Xếp loại", why: "Vì sao mất điểm", lost: "Điểm mất", cause: "Nguyên nhân", overdue_now: "hồ sơ quá hạn",
    each_costs: "mỗi hồ sơ quá hạn thêm", petitions_late: "phản ánh, kiến nghị chưa đạt", not_met: "chưa đạt",
    no_loss: "Không mất điểm nào", download: "Tải thông báo tháng (PDF)", download_xlsx: "XLSX",
    stale: "Dữ liệu chậm", minutes: "phút", no_worker: "Không có tiến trình xử lý nào đang chạy: số liệu dừng ở",
    stalled_worker: "Tiến trình xử lý đang ngừng: số liệu dừng ở", partial: "tạm tính", rolled_up: "gồm các đơn vị trực thuộc",
    in_units: "đơn vị", thread: "lần cảnh báo", sort: "Bấm để sắp xếp",
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
    band: "Band", why: "Why points were lost", lost: "Points lost", cause: "Behind it", overdue_now: "overdue dossiers",
    each_costs: "each further overdue dossier", petitions_late: "petitions short of the target", not_met: "short",
    no_loss: "No points lost", download: "Monthly notice (PDF)", download_xlsx: "XLSX",
    stale: "Figures late by", minutes: "min", no_worker: "No worker is running: the figures stopped at",
    stalled_worker: "The worker has stalled: the figures stopped at", partial: "partial", rolled_up: "including units below",
    in_units: "units", thread: "alerts", sort: "Click to sort",
  },
};
const GROUPS = ["CKMB", "TDGQ", "CLGQ", "TTTT", "MDSH", "MDHL"];
const state = { lang: localStorage.getItem("chiso766.lang") || "vi", period: null, group: null, previous: {},
                previousRank: {}, groupMax: {}, groupNames: {}, names: null, sort: null, periods: [],
                live: false, fresh: null };
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

// Every human name comes from /api/names (one place, the server's): periods, peer groups, indicators, bands, units.
const named = (kind, key) => state.names?.[kind]?.[key]?.[state.lang] ?? key;
function groupLabel(code) {
  const [kind, parent] = code.split(":");
  if (state.names?.groups?.[code]) return named("groups", code);
  return parent ? `${t(kind)} ${state.names?.units?.[parent] ?? parent}` : t(kind);
}
const periodLabel = (key) => named("periods", key);
const unitName = (code) => state.names?.units?.[code] ?? code;
const groupName = (code) => state.groupNames[code]?.[state.lang] ?? code;
function band(total) {
  const found = (state.names?.bands ?? []).find((b) => total >= b.min);
  return found ? { label: found[state.lang], css: `band band-${found.min}` } : { label: "–", css: "band" };
}
async function loadNames() {
  state.names = await api(`/api/names${state.period ? `?period=${encodeURIComponent(state.period)}` : ""}`);
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
  state.periods = periods;
  await loadNames();
  const picker = $("#period");
  picker.innerHTML = periods.map((p) => `<option value="${esc(p)}">${esc(periodLabel(p))}</option>`).join("");
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

// Drawn as SVG attributes, never inline styles: the dashboard runs under a strict same-origin CSP.
function meterSvg(share, css = "fill") {
  const width = Math.max(0, Math.min(100, 100 * share));
  return `<svg class="track" viewBox="0 0 100 10" preserveAspectRatio="none" aria-hidden="true">
    <rect class="track-bg" width="100" height="10"/><rect class="${css}" width="${width.toFixed(2)}" height="10"/></svg>`;
}

// Rank movement since the previous period; when there is none, since this page last drew the row.
function movement(row) {
  const seen = state.previousRank[row.code];
  const moved = row.movement ?? (seen === undefined ? null : seen - row.rank);
  state.previousRank[row.code] = row.rank;
  if (moved == null) return '<span class="same">·</span>';
  if (moved > 0) return `<span class="up" title="+${moved}">▲ ${moved}</span>`;
  if (moved < 0) return `<span class="down" title="${moved}">▼ ${-moved}</span>`;
  return '<span class="same">=</span>';  // a glyph Debian's fonts have (the full-width ＝ is not)
}

const SORTS = {
  rank: (row) => row.rank ?? 1e9, unit: (row) => row.name, total: (row) => row.total, change: (row) => row.change ?? -1e9,
  band: (row) => row.total, ...Object.fromEntries(GROUPS.map((g) => [g, (row) => row.groups[g] ?? 0])),
};

async function renderLeaderboard() {
  $("#group-picker").hidden = false;
  if (!state.period) { $("#view").innerHTML = `<p class="muted">${t("loading")}</p>`; return; }
  const board = await api(`/api/leaderboard?period=${encodeURIComponent(state.period)}` +
    `&group=${encodeURIComponent(state.group)}&size=200`);
  showAsOf(board.as_of);
  const units = [...board.units];
  if (state.sort) {
    const key = SORTS[state.sort.key];
    units.sort((a, b) => { const x = key(a), y = key(b); return (x < y ? -1 : x > y ? 1 : 0) * state.sort.dir; });
  }
  const rows = units.map((row) => {
    const changed = state.previous[row.code] !== undefined && state.previous[row.code] !== row.total;
    state.previous[row.code] = row.total;
    const rated = band(row.total);
    return `<tr data-code="${esc(row.code)}" class="${changed ? "flash" : ""}">
      <td class="num">${esc(row.rank)}</td><td class="move">${movement(row)}</td>
      <td class="unit-cell"><a href="#/unit/${encodeURIComponent(row.code)}">${esc(row.name)}</a></td>
      ${GROUPS.map((g) => `<td class="num group-cell" data-group="${g}">${num(row.groups[g])}</td>`).join("")}
      <td class="num total-cell">${num(row.total)}</td>
      <td><span class="${rated.css}">${esc(rated.label)}</span></td>
      <td class="num ${row.change > 0 ? "up" : row.change < 0 ? "down" : ""}">${row.change == null ? "–" :
        (row.change > 0 ? "+" : "") + num(row.change)}</td></tr>`;
  }).join("");
  const header = (key, label, css = "") => `<th class="sortable ${css}" data-sort="${key}" title="${t("sort")}">${esc(label)}${
    state.sort?.key === key ? (state.sort.dir > 0 ? " ↑" : " ↓") : ""}</th>`;
  $("#view").innerHTML = `<h2 id="board-title">${esc(groupLabel(board.group))} · ${esc(periodLabel(board.period))}</h2>
    <div class="scroll"><table id="leaderboard"><thead><tr>${header("rank", t("rank"), "num")}<th></th>
    ${header("unit", t("unit"))}${GROUPS.map((g) => header(g, `${groupName(g)} (${num(state.groupMax[g])})`, "num group-head")).join("")}
    ${header("total", t("total"), "num")}${header("band", t("band"))}${header("change", t("change"), "num")}</tr></thead>
    <tbody>${rows}</tbody></table></div>`;
  document.querySelectorAll("#leaderboard th.sortable").forEach((th) => th.addEventListener("click", () => {
    const key = th.dataset.sort;
    const numeric = key !== "unit" && key !== "rank";
    state.sort = state.sort?.key === key ? { key, dir: -state.sort.dir } : { key, dir: numeric ? -1 : 1 };
    renderLeaderboard();
  }));
}

function showAsOf(asOf) {
  $("#as-of").textContent = `${t("as_of")} ${when(asOf)}`;
}

// The current month is still moving: its point is hollow and its segment dashed, labelled partial.
function trendChart(points, asOf) {
  if (!points.length) return `<p class="muted">${t("none")}</p>`;
  const width = 600, height = 160, pad = 28;
  const current = asOf ? `month:${asOf.slice(0, 7)}` : null;
  const x = (i) => pad + (points.length === 1 ? 0 : i * (width - 2 * pad) / (points.length - 1));
  const y = (v) => height - pad - v * (height - 2 * pad) / 100;
  const done = points.filter((p) => p.period !== current);
  const path = done.map((p, i) => `${x(i)},${y(p.total)}`).join(" ");
  const last = points.length - 1;
  const partial = points[last].period === current && last > 0 ?
    `<line class="partial" x1="${x(last - 1)}" y1="${y(points[last - 1].total)}" x2="${x(last)}" y2="${y(points[last].total)}"/>
     <text x="${x(last)}" y="${y(points[last].total) - 8}" font-size="10" text-anchor="end" class="partial-label">${t("partial")}</text>` : "";
  return `<svg class="trend" viewBox="0 0 ${width} ${height}" role="img" aria-label="${t("trend")}">
    ${[0, 50, 100].map((v) => `<line x1="${pad}" x2="${width - pad}" y1="${y(v)}" y2="${y(v)}" class="grid"/>
      <text x="2" y="${y(v) + 4}" font-size="10" class="axis">${v}</text>`).join("")}
    <polyline points="${path}" class="line"/>${partial}
    ${points.map((p, i) => `<circle cx="${x(i)}" cy="${y(p.total)}" r="3" class="${p.period === current ? "point partial-point" : "point"}"><title>${esc(periodLabel(p.period))}: ${num(p.total)}${p.period === current ? ` (${t("partial")})` : ""}</title></circle>
      <text x="${x(i)}" y="${height - 8}" font-size="10" text-anchor="middle" class="axis">${esc(p.period.slice(-2))}</text>`).join("")}
  </svg>`;
}

function whyPanel(why, code) {
  if (!why.indicators.length) return `<div id="why"><h3>${t("why")}</h3><p class="muted">${t("no_loss")}</p></div>`;
  const cause = (row) => {
    const c = row.cause;
    if (c.kind === "overdue_dossiers" && c.count) {
      return `<a class="cause-link" href="#/unit/${encodeURIComponent(code)}/overdue">${whole(c.count)} ${t("overdue_now")}</a>` +
        (c.next_one_costs != null ? ` → −${num(c.next_one_costs)} ${t("each_costs")}` : "");
    }
    if (c.kind === "petitions" && c.count) return `${whole(c.count)} ${t("petitions_late")}`;
    return c.denominator ? `${whole(c.numerator)}/${whole(c.denominator)}` : "0/0";
  };
  return `<div id="why"><h3>${t("why")}</h3><div class="scroll"><table id="why-table"><thead><tr><th>${t("indicators")}</th>
    <th class="num">${t("lost")}</th><th>${t("cause")}</th></tr></thead><tbody>
    ${why.indicators.map((row) => `<tr data-indicator="${esc(row.code)}"><td>${esc(row.ref)} · ${esc(state.lang === "vi" ? row.name_vi : row.name_en)}</td>
      <td class="num down">−${num(row.lost)}</td><td>${cause(row)}</td></tr>`).join("")}
    </tbody></table></div></div>`;
}

function dossierTable(list, id) {
  if (!list.dossiers.length) return `<p class="muted" id="${id}-none">${t("none")}</p>`;
  return `<div class="scroll"><table class="dossiers" id="${id}-table"><thead><tr><th>${t("dossier")}</th><th>${t("unit")}</th>
    <th>${t("procedure")}</th><th>${t("officer")}</th><th>${t("due")}</th><th class="num">${t("stake")}</th></tr></thead>
    <tbody>${list.dossiers.map((d) => `<tr><td>${esc(d.dossier)}</td><td>${esc(d.unit_name ?? unitName(d.unit))}</td>
    <td>${esc(d.procedure)}</td><td>${esc(d.officer)}</td><td>${when(d.due)}</td><td class="num">${num(d.points_at_stake)}</td></tr>`).join("")}
    </tbody></table></div><p class="muted">${whole(list.total)} ${t("dossier").toLowerCase()} · ${whole(list.units)} ${t("in_units")}
    (${t("rolled_up")})</p>`;
}

async function renderUnit(code, anchor) {
  $("#group-picker").hidden = true;
  const period = encodeURIComponent(state.period);
  const unitPath = `/api/units/${encodeURIComponent(code)}`;
  const [unit, overdue, approaching, officers, quality, why] = await Promise.all([
    api(`${unitPath}?period=${period}`),
    api(`${unitPath}/rollup?list=overdue&size=50`),
    api(`${unitPath}/rollup?list=approaching&size=50`),
    api(`${unitPath}/officers?period=${period}`),
    api(`/api/quality?period=${period}&unit=${encodeURIComponent(code)}`),
    api(`${unitPath}/why?period=${period}`),
  ]);
  showAsOf(unit.as_of);
  const name = (g) => state.lang === "vi" ? g.name_vi : g.name_en;
  const rated = band(unit.total);
  $("#view").innerHTML = `<p><a href="#/">${t("back")}</a></p>
    <h2 id="unit-title">${esc(unit.name)} <span class="muted">${esc(unit.code)} · ${esc(periodLabel(unit.period))}</span></h2>
    <p><span class="total" id="unit-total">${num(unit.total)}</span> / 100 · <span class="${rated.css}" id="unit-band">${esc(rated.label)}</span>
      · ${t("rank")} ${esc(unit.rank ?? "–")} · ${t("stake")}: ${num(unit.points_at_stake)}</p>
    <h3>${t("groups")}</h3>
    ${unit.groups.map((g) => `<div class="meter" data-group="${g.code}"><span>${esc(name(g))}</span>
      ${meterSvg(g.max ? g.score / g.max : 0)}<span class="num">${num(g.score)} / ${num(g.max)}</span></div>`).join("")}
    ${whyPanel(why, code)}
    <h3>${t("trend")}</h3>${trendChart(unit.trend, unit.as_of)}
    <h3>${t("indicators")}</h3>
    <div class="scroll"><table id="indicators"><thead><tr><th></th><th>${t("indicators")}</th><th class="num">${t("numerator")}</th>
      <th class="num">${t("denominator")}</th><th class="num">${t("score")}</th><th class="num">${t("max")}</th></tr></thead>
      <tbody>${unit.indicators.map((i) => `<tr><td>${esc(i.ref)}</td><td>${esc(named("indicators", i.code))}</td>
      <td class="num">${whole(i.numerator)}</td><td class="num">${whole(i.denominator)}</td><td class="num">${num(i.score)}</td>
      <td class="num">${num(i.max)}</td></tr>`).join("")}</tbody></table></div>
    <h3 id="overdue">${t("overdue")}</h3>${dossierTable(overdue, "overdue")}
    <h3 id="approaching">${t("approaching")}</h3>${dossierTable(approaching, "approaching")}
    <h3>${t("officers")}</h3>${officers.officers.length ? `<div class="scroll"><table><thead><tr><th>${t("officer")}</th>
      <th class="num">${t("steps_on_time")}</th><th class="num">${t("steps_late")}</th><th class="num">${t("overdue_held")}</th>
      <th class="num">${t("points_cost")}</th></tr></thead><tbody>${officers.officers.map((o) => `<tr><td>${esc(o.officer)}</td>
      <td class="num">${o.steps_on_time ?? 0}</td><td class="num">${o.steps_late ?? 0}</td><td class="num">${o.overdue_held ?? 0}</td>
      <td class="num">${num(o.points_cost)}</td></tr>`).join("")}</tbody></table></div>` : `<p class="muted">${t("none")}</p>`}
    <div id="plan-panel"></div>
    <p><a id="reconcile-link" href="#/reconcile/${encodeURIComponent(code)}">${t("reconcile")} →</a></p>
    ${qualityPanel(quality, code)}
    ${unit.children.length ? `<h3>${t("children")}</h3><table><tbody>${unit.children.map((c) => `<tr>
      <td><a href="#/unit/${encodeURIComponent(c.code)}">${esc(c.name)}</a></td>
      <td class="num">${num(c.total)}</td></tr>`).join("")}</tbody></table>` : ""}`;
  await window.chiso766Portal.renderPlanPanel(code);
  if (anchor) document.getElementById(anchor)?.scrollIntoView();
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

// One thread per dossier: its latest alert, and how many came before (approaching, apology due, overdue).
function alertThreads(alerts) {
  const threads = new Map();
  for (const alert of alerts) {
    const thread = threads.get(alert.dossier);
    if (thread) thread.count += 1; else threads.set(alert.dossier, { latest: alert, count: 1 });
  }
  return [...threads.values()];
}

function alertItem({ latest: alert, count }) {
  return `<li data-dossier="${esc(alert.dossier)}"><span class="kind ${esc(alert.kind)}">${esc(t(`${alert.kind}_kind`))}</span>
    <strong>${esc(alert.dossier)}</strong>${count > 1 ? ` <span class="muted">(${count} ${t("thread")})</span>` : ""}
    <br>${esc(unitName(alert.unit))} · ${esc(alert.officer || "")}<br>
    <span class="muted">${t("due")} ${when(alert.due)} · ${t("stake")} ${num(alert.points_at_stake)}</span></li>`;
}

async function loadAlerts() {
  const unit = currentUnit();
  const { alerts } = await api(`/api/alerts?limit=100${unit ? `&unit=${encodeURIComponent(unit)}` : ""}`);
  state.alerts = alerts;
  $("#alerts").innerHTML = alertThreads(alerts).slice(0, 30).map(alertItem).join("");
}

function currentUnit() {
  const match = location.hash.match(/^#\/unit\/([^/]+)/);
  return match ? decodeURIComponent(match[1]) : null;
}

function currentAnchor() {
  const match = location.hash.match(/^#\/unit\/[^/]+\/([a-z]+)$/);
  return match ? match[1] : null;
}

async function render() {
  try {
    const unit = currentUnit();
    const reconciling = location.hash.match(/^#\/reconcile\/(.+)$/);
    if (reconciling) await window.chiso766Portal.renderReconcile(decodeURIComponent(reconciling[1]));
    else if (unit) await renderUnit(unit, currentAnchor()); else await renderLeaderboard();
    updateDownload();
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

// Connected is not advancing: "Trực tiếp" only while the event stream is open AND the worker's heartbeat
// says it advances; otherwise the badge says stalled and a banner says how late the figures are.
async function watchWorker() {
  try {
    const fresh = await api("/api/freshness");
    state.fresh = fresh;
    $("#live").classList.toggle("stalled", !fresh.advancing);
    const banner = $("#freshness");
    if (fresh.stale) {
      const minutes = Math.max(1, Math.round((fresh.late_seconds ?? 0) / 60));
      const why = !fresh.worker ? t("no_worker") : !fresh.advancing ? t("stalled_worker") : null;
      banner.textContent = why ? `${why} ${when(fresh.as_of)} (${t("stale").toLowerCase()} ${whole(minutes)} ${t("minutes")})`
        : `${t("stale")} ${whole(minutes)} ${t("minutes")} · ${t("as_of")} ${when(fresh.as_of)}`;
      banner.hidden = false;
    } else {
      banner.hidden = true;
    }
    applyLabels();
  } catch (error) { /* unreachable: the event stream's own error already says offline */ }
}

function updateDownload() {
  const months = state.periods.filter((p) => p.startsWith("month:"));
  const year = (state.period ?? "").match(/\d{4}/)?.[0];
  const month = state.period?.startsWith("month:") ? state.period
    : (months.filter((m) => m.slice(6, 10) === year).pop() ?? months[months.length - 1]);
  const link = $("#download");
  if (!month) { link.hidden = true; return; }
  const unit = currentUnit() || state.names?.root || Object.keys(state.names?.units ?? {})[0];
  link.hidden = !unit;
  link.href = `/api/notice?period=${encodeURIComponent(month)}&unit=${encodeURIComponent(unit ?? "")}&format=pdf&lang=${state.lang}`;
  link.textContent = `${t("download")} · ${periodLabel(month)}`;
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
    state.alerts = [alert, ...(state.alerts ?? [])].slice(0, 200);
    $("#alerts").innerHTML = alertThreads(state.alerts).slice(0, 30).map(alertItem).join("");
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
  ruleset.groups.forEach((g) => { state.groupMax[g.code] = g.max; state.groupNames[g.code] = { vi: g.name_vi, en: g.name_en }; });
  await loadPeriods();
  await loadGroups();
  await render();
  connect();
  watchWorker();
  setInterval(watchWorker, 5000);
}

start();
