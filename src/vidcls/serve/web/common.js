// Helpers shared by the live and file pages.
"use strict";

const $ = (selector) => document.querySelector(selector);

/** Fill an <ol class="results"> with categories [{label, score}], one per <li>. */
function renderTop(list, top) {
  const rows = list.querySelectorAll("li");
  rows.forEach((row, i) => {
    const c = top && top[i];
    row.querySelector(".label").textContent = c ? c.label : "–";
    row.querySelector(".score").textContent = c ? `${(c.score * 100).toFixed(1)}%` : "";
    row.querySelector(".meter i").style.width = c ? `${Math.max(0, Math.min(1, c.score)) * 100}%` : "0";
  });
  list.classList.toggle("empty", !(top && top.length));
}

/** A results list with n rows. */
function resultRows(list, n) {
  list.replaceChildren();
  for (let i = 0; i < n; i++) {
    const li = document.createElement("li");
    li.innerHTML = '<span class="label">–</span><span class="score"></span><span class="meter"><i></i></span>';
    list.append(li);
  }
}

/** m:ss.ss, as the command line prints times. */
function formatTime(seconds) {
  const m = Math.floor(seconds / 60);
  const s = (seconds - m * 60).toFixed(2).padStart(5, "0");
  return `${m}:${s}`;
}

/** The message in a FastAPI error body ({"detail": "..."} or a validation list). */
function errorText(body, status) {
  const d = body && body.detail;
  if (typeof d === "string") return d;
  if (Array.isArray(d)) return d.map((e) => `${(e.loc || []).slice(-1)[0]}: ${e.msg}`).join("; ");
  return `HTTP ${status}`;
}

async function fetchJSON(url) {
  const r = await fetch(url, { cache: "no-store" });
  const body = await r.json().catch(() => null);
  if (!r.ok) throw new Error(errorText(body, r.status));
  return body;
}

function fillModels(select, info) {
  select.replaceChildren();
  for (const m of info.models) {
    const o = document.createElement("option");
    o.value = m.id;
    o.textContent = m.input ? `${m.id} · ${m.input[0]} px` : m.id;
    o.selected = m.id === info.default;
    select.append(o);
  }
}
