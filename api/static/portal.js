// chiso766 dashboard, the portal pages: "Đối soát với Cổng DVCQG" (#/reconcile/CODE) and the unit page's
// "Cần làm gì để …" panel. Loaded after app.js, whose helpers (api, esc, num, t, state, $) it uses.
// No inline scripts or styles: everything is built from classes in style.css.
"use strict";

Object.assign(LABELS.vi, {
  reconcile: "Đối soát với Cổng DVCQG", published: "Cổng DVCQG", ours: "Hệ thống", points: "Chênh lệch",
  explanations: "Giải thích", unexplained: "Chưa giải thích được từ dữ liệu của hệ thống",
  all_explained: "Toàn bộ chênh lệch đã được giải thích", candidates: "ứng viên, không tính vào phần đã giải thích",
  plan: "Cần làm gì để", plan_target: "Mục tiêu", next_band: "lên hạng xếp loại kế tiếp", baseline: "Dự kiến cuối kỳ nếu không làm gì",
  after: "Sau kế hoạch", needed: "Cần đạt", action: "Việc cần làm", by: "Thực hiện trước", unreachable: "Không đạt được trong kỳ",
  dossiers_n: "hồ sơ", page: "Trang", rank_to: "hạng",
});
Object.assign(LABELS.en, {
  reconcile: "Reconciliation with the national portal", published: "Portal", ours: "Ours", points: "Points",
  explanations: "Explanations", unexplained: "Not explained by our data", all_explained: "Every point of the gap is explained",
  candidates: "candidates, not counted as explained", plan: "What it takes to", plan_target: "Target",
  next_band: "reach the next band", baseline: "Projected to the period's end if nobody acts", after: "After the plan",
  needed: "Needed", action: "Action", by: "By", unreachable: "Not reachable this period", dossiers_n: "dossiers",
  page: "Page", rank_to: "rank",
});

const signed = (value) => `${value > 0 ? "+" : ""}${num(value)}`;
const sign = (value) => value > 0 ? "up" : value < 0 ? "down" : "";

async function renderReconcile(code) {
  $("#group-picker").hidden = true;
  const period = encodeURIComponent(state.period);
  const row = await api(`/api/reconcile?unit=${encodeURIComponent(code)}&period=${period}`);
  const published = row.published || {};
  const explanations = (row.explanations || []).map((item) => `<li class="${item.accounted ? "accounted" : "candidate"}">
      <strong>${esc(state.lang === "vi" ? item.label : item.label_en)}</strong>: ${item.count} ${t("dossiers_n")},
      ${Object.entries(item.points).map(([key, value]) => `${esc(key)} <span class="${sign(value)}">${signed(value)}</span>`).join(", ")}
      ${item.accounted ? "" : `<span class="muted">(${t("candidates")})</span>`}
      ${item.rules ? `<div class="muted">${Object.entries(item.rules).map(([rule, n]) => `${esc(rule)}: ${n}`).join(" · ")}</div>` : ""}
      <div class="codes">${t("page")} ${item.page}/${item.pages}: ${item.dossiers.map(esc).join(", ")}</div></li>`).join("");
  const left = row.unexplained || [];
  $("#view").innerHTML = `<p><a href="#/unit/${encodeURIComponent(code)}">← ${esc(row.name || code)}</a></p>
    <h2 id="reconcile-title">${t("reconcile")} <span class="muted">${esc(code)} · ${esc(row.period)}</span></h2>
    <p class="muted">${t("published")}: ${esc(published.kind)} ${esc(published.date)} · ${esc(published.collected_at || "")}</p>
    <p class="totals"><span>${t("published")} <span class="total">${num(row.published_total)}</span></span>
      <span>${t("ours")} <span class="total">${num(row.our_total)}</span></span>
      <span>${t("points")} <span class="total ${sign(row.points)}">${signed(row.points)}</span></span></p>
    <table id="reconcile-groups"><thead><tr><th>${t("groups")}</th><th class="num">${t("published")}</th>
      <th class="num">${t("ours")}</th><th class="num">${t("points")}</th></tr></thead><tbody>
      ${row.groups.map((g) => `<tr><td>${esc(g.code)}</td><td class="num">${num(g.published)}</td><td class="num">${num(g.ours)}</td>
      <td class="num ${sign(g.points)}">${signed(g.points)}</td></tr>`).join("")}</tbody></table>
    <h3>${t("indicators")}</h3>
    <table id="reconcile-indicators"><thead><tr><th>${t("code")}</th><th></th><th class="num">${t("published")}</th><th class="num"></th>
      <th class="num">${t("ours")}</th><th class="num"></th><th class="num">${t("points")}</th></tr></thead><tbody>
      ${row.indicators.map((i) => `<tr><td>${esc(i.ref)}</td><td>${esc(i.code)}</td>
      <td class="num muted">${i.published.numerator ?? "–"}/${i.published.denominator ?? "–"}</td><td class="num">${num(i.published.score)}</td>
      <td class="num muted">${i.ours.numerator}/${i.ours.denominator}</td><td class="num">${num(i.ours.score)}</td>
      <td class="num ${sign(i.points)}">${signed(i.points)}</td></tr>`).join("")}</tbody></table>
    <h3>${t("explanations")}</h3>
    ${explanations ? `<ul id="explanations">${explanations}</ul>` : `<p class="muted">${t("none")}</p>`}
    <p id="unexplained" class="${left.length ? "warn" : "ok"}">${left.length ? `${t("unexplained")}: ${left.map((item) =>
      `${esc(item.code)} ${signed(item.points)}`).join(", ")}` : t("all_explained")}</p>
    ${(row.notes || []).map((note) => `<p class="muted note">${esc(note)}</p>`).join("")}`;
}

const TARGETS = ["next-band", "band:Khá", "band:Tốt", "band:Xuất sắc", "rank:1", "rank:3"];

async function renderPlanPanel(code) {
  const holder = $("#plan-panel");
  if (!holder) return;
  const target = holder.dataset.target || "next-band";
  const options = TARGETS.map((value) => `<option value="${esc(value)}" ${value === target ? "selected" : ""}>${
    esc(value === "next-band" ? t("next_band") : value.replace("rank:", `${t("rank_to")} `).replace("band:", ""))}</option>`).join("");
  let body;
  try {
    const plan = await api(`/api/units/${encodeURIComponent(code)}/plan?period=${encodeURIComponent(state.period)}` +
      `&target=${encodeURIComponent(target)}`);
    const note = state.lang === "vi" && plan.note_vi ? plan.note_vi : plan.note;  // plans stored before note_vi: English
    body = `<p>${t("baseline")}: <strong>${num(plan.baseline_total)}</strong> (${t("rank")} ${plan.baseline_rank}) ·
        ${t("needed")}: <strong>${num(plan.target_total)}</strong> · ${t("after")}:
        <strong class="${plan.reachable ? "up" : "down"}">${num(plan.total_after)}</strong> (${t("rank")} ${plan.rank_after})</p>
      ${plan.reachable ? "" : `<p class="warn">${t("unreachable")}: ${esc(note)}</p>`}
      ${plan.actions.length ? `<table id="plan-actions"><thead><tr><th>#</th><th>${t("action")}</th><th>${t("dossier")}</th>
        <th>${t("due")}</th><th>${t("officer")}</th><th>${t("by")}</th><th class="num">${t("points")}</th></tr></thead><tbody>
        ${plan.actions.map((a, i) => `<tr><td class="num">${i + 1}</td><td>${esc(state.lang === "vi" ? a.label : a.label_en)}</td>
        <td>${esc(a.dossier)}</td><td>${when(a.due)}</td><td>${esc(a.officer || "–")}</td><td>${when(a.at)}</td>
        <td class="num up">${signed(a.points)}</td></tr>`).join("")}</tbody></table>` : `<p class="muted">${esc(note)}</p>`}
      <p class="muted note">${esc(plan.projected_at)}</p>`;
  } catch (error) {
    body = `<p class="muted note">${esc(error.message)}</p>`;
  }
  holder.innerHTML = `<h3>${t("plan")} <select id="plan-target">${options}</select></h3>${body}`;
  $("#plan-target").addEventListener("change", (event) => { holder.dataset.target = event.target.value; renderPlanPanel(code); });
}

window.chiso766Portal = { renderReconcile, renderPlanPanel };
