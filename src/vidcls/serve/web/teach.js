// The teaching page: label clips with the keyboard, check them, train a job with its phases
// shown as they go, read its report and deploy its model (or undo the last deploy).
"use strict";

const $ = (id) => document.getElementById(id);
let data = null;        // GET api/teach
let index = 0;          // which unlabelled clip is shown
let focus = null;       // the clip name shown (an unlabelled one, or a labelled one clicked)
let typed = [];         // labels typed here that have no clip yet
let jobId = null;       // the job shown
let polling = null;

function problem(text) {
  $("problem").textContent = text || "";
  $("problem").hidden = !text;
}

async function call(method, url, body, type) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.body = type ? body : JSON.stringify(body);
    init.headers["Content-Type"] = type || "application/json";
  }
  const r = await fetch(url, init);
  const doc = await r.json().catch(() => ({}));
  if (!r.ok) throw Object.assign(new Error(doc.detail || `${r.status} ${r.statusText}`), { status: r.status });
  return doc;
}

function labels() {
  return [...new Set([...(data ? data.clips.labels : []), ...typed])].sort();
}

function folderOf(name) {
  if (data.clips.unlabelled.includes(name)) return "unlabelled";
  for (const [label, names] of Object.entries(data.clips.labelled)) {
    if (names.includes(name)) return label;
  }
  return null;
}

function render() {
  const todo = data.clips.unlabelled;
  $("left").textContent = `${todo.length} waiting`;
  if (focus === null || folderOf(focus) === null) {
    index = Math.min(index, Math.max(0, todo.length - 1));
    focus = todo.length ? todo[index] : null;
  }
  $("current").hidden = focus === null;
  $("none").hidden = focus !== null;
  if (focus !== null) {
    const src = "teach/clip/" + encodeURIComponent(focus);
    if ($("clip").getAttribute("src") !== src) $("clip").setAttribute("src", src);
    $("name").textContent = focus;
    $("where").textContent = folderOf(focus) === "unlabelled" ? "unlabelled" : `labelled ${folderOf(focus)}`;
  }
  const keys = $("labels");
  keys.replaceChildren();
  labels().forEach((label, i) => {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "btn";
    b.dataset.label = label;
    b.textContent = i < 9 ? `${i + 1} · ${label}` : label;
    b.addEventListener("click", () => setLabel(label));
    keys.append(b);
  });
  const labelled = $("labelled");
  labelled.replaceChildren();
  for (const [label, names] of Object.entries(data.clips.labelled)) {
    const row = document.createElement("div");
    row.className = "labelled";
    const head = document.createElement("strong");
    head.textContent = `${label} (${names.length})`;
    row.append(head);
    for (const name of names) {
      const chip = document.createElement("button");
      chip.type = "button";
      chip.className = "chip";
      chip.textContent = name;
      chip.addEventListener("click", () => { focus = name; render(); });
      row.append(chip);
    }
    labelled.append(row);
  }
  $("import").hidden = !data.events;
  const record = $("record");
  record.replaceChildren();
  for (const source of data.sources) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "btn";
    b.textContent = `Record 10 s of ${source}`;
    b.addEventListener("click", () => recordFrom(source, b));
    record.append(b);
  }
  const d = data.deployed;
  $("deployed").textContent = d.current ? `${d.current} (job ${d.history[d.history.length - 1].job})` : `${data.base} (the server's own)`;
  $("undo").hidden = !d.history.length;
  const jobs = $("jobs");
  jobs.replaceChildren();
  for (const job of data.jobs) {
    const li = document.createElement("li");
    const cv = job.result && job.result.cv_accuracy != null ? ` · cross-validated ${(100 * job.result.cv_accuracy).toFixed(1)} %` : "";
    li.textContent = `${job.id} · ${job.state}${cv}`;
    li.className = "playable";
    li.addEventListener("click", () => showJob(job.id));
    jobs.append(li);
  }
}

async function refresh() {
  try {
    data = await call("GET", "api/teach");
    problem("");
    render();
  } catch (e) {
    problem(e.message);
    if (e.status === 404) {  // no teaching on this server (no data folder): nothing to press
      document.querySelectorAll("main.teach > section").forEach((s) => { s.hidden = true; });
      return;
    }
  }
  showAudit();
}

/** The audit log: who signed in and what they changed. */
async function showAudit() {
  const list = $("audit");
  let entries = [];
  try {
    entries = (await call("GET", "api/audit?limit=50")).entries;
  } catch (e) {
    return;
  }
  list.replaceChildren();
  for (const e of entries) {
    const li = document.createElement("li");
    const when = new Date(e.time * 1000).toLocaleString();
    const status = e.status ? ` → ${e.status}` : "";
    const extra = e.label !== undefined ? ` (${e.label})` : "";
    li.textContent = `${when} · ${e.user || "(no sign-in)"} · ${e.action}${extra}${status}`;
    list.append(li);
  }
}

async function act(work) {
  try {
    await work();
    problem("");
  } catch (e) {
    problem(e.message);
  }
  await refresh();
}

function setLabel(label) {
  if (focus === null) return;
  const name = focus;
  focus = null;
  act(() => call("POST", "api/teach/clips/" + encodeURIComponent(name), { label }));
}

function discard() {
  if (focus === null) return;
  const name = focus;
  focus = null;
  act(() => call("DELETE", "api/teach/clips/" + encodeURIComponent(name)));
}

function step(by) {
  const todo = data.clips.unlabelled;
  if (!todo.length) return;
  index = (index + by + todo.length) % todo.length;
  focus = todo[index];
  render();
}

document.addEventListener("keydown", (e) => {
  if (e.target.closest("input, select, textarea") || e.ctrlKey || e.metaKey || e.altKey) return;
  const all = labels();
  if (/^[1-9]$/.test(e.key) && Number(e.key) <= all.length) setLabel(all[Number(e.key) - 1]);
  else if (e.key === "x" || e.key === "Delete") discard();
  else if (e.key === "u") setLabel("");
  else if (e.key === "n") { e.preventDefault(); $("label-input").focus(); }
  else if (e.key === "ArrowRight") step(1);
  else if (e.key === "ArrowLeft") step(-1);
  else return;
  e.preventDefault();
});

$("new-label").addEventListener("submit", (e) => {
  e.preventDefault();
  const label = $("label-input").value.trim();
  if (!label) return;
  $("label-input").value = "";
  $("label-input").blur();
  if (!typed.includes(label)) typed.push(label);
  setLabel(label);
});
$("discard").addEventListener("click", discard);
$("skip").addEventListener("click", () => step(1));

$("upload").addEventListener("change", async () => {
  const files = [...$("upload").files];
  for (const f of files) {
    await act(() => call("POST", "api/teach/upload?filename=" + encodeURIComponent(f.name), f, f.type || "application/octet-stream"));
  }
  $("upload").value = "";
});

$("import").addEventListener("click", () => act(() => call("POST", "api/teach/import")));

function recordFrom(source, button) {
  act(async () => {
    const r = await call("POST", "api/teach/record", { source, seconds: 10 });
    button.disabled = true;
    button.textContent = `Recording ${source}…`;
    setTimeout(() => { button.disabled = false; refresh(); }, 1000 * (r.ready_in + 2));
  });
}

$("check").addEventListener("click", () => act(async () => {
  const report = await call("GET", "api/teach/check");
  const ul = $("findings");
  ul.replaceChildren();
  for (const f of report.findings) {
    const li = document.createElement("li");
    li.className = f.level;
    li.textContent = `${f.level}: ${f.message}`;
    ul.append(li);
  }
  if (!report.findings.length) {
    const li = document.createElement("li");
    li.textContent = "no problems found";
    ul.append(li);
  }
}));

$("train-form").addEventListener("submit", (e) => {
  e.preventDefault();
  act(async () => {
    const job = await call("POST", "api/teach/jobs", { fit: $("fit").value, views: Number($("views").value) });
    showJob(job.id);
  });
});

function percent(x) {
  return x == null ? "–" : `${(100 * x).toFixed(1)} %`;
}

function matrix(classes, m) {
  const table = document.createElement("table");
  table.className = "confusion";
  const head = table.insertRow();
  head.insertCell().textContent = "true \\ predicted";
  for (const c of classes) head.insertCell().textContent = c;
  head.insertCell().textContent = "recall";
  m.forEach((row, i) => {
    const tr = table.insertRow();
    tr.insertCell().textContent = classes[i];
    row.forEach((v, j) => {
      const td = tr.insertCell();
      td.textContent = v;
      if (i === j) td.className = "diag";
    });
    const total = row.reduce((a, b) => a + b, 0);
    tr.insertCell().textContent = percent(total ? row[i] / total : null);
  });
  return table;
}

function renderJob(job) {
  $("job").hidden = false;
  $("job-title").textContent = `Job ${job.id}`;
  $("job-state").textContent = job.state + (job.error ? `: ${job.error}` : "");
  $("cancel").hidden = !["queued", "running"].includes(job.state);
  const phases = $("phases");
  phases.replaceChildren();
  for (const p of job.phases || []) {
    const li = document.createElement("li");
    const share = p.total ? p.done / p.total : (p.state === "done" ? 1 : 0);
    li.innerHTML = "<span class='phase'></span><span class='meter'><i></i></span><span class='muted note'></span>";
    li.querySelector(".phase").textContent = p.name;
    li.querySelector("i").style.width = `${Math.round(100 * share)}%`;
    li.querySelector(".note").textContent = p.total ? `${p.done}/${p.total} ${p.note || ""}` : (p.note || "");
    phases.append(li);
  }
  const report = $("report");
  report.replaceChildren();
  $("deploy").hidden = job.state !== "done";
  const r = job.result;
  if (!r) return;
  const lines = document.createElement("ul");
  const add = (text) => { const li = document.createElement("li"); li.textContent = text; lines.append(li); };
  add(`cross-validated accuracy ${percent(r.cv_accuracy)} on ${Object.values(r.counts).reduce((a, b) => a + b, 0)} clips (what to expect on new clips like these)`);
  if (r.int8) add(`int8 check: agrees with the float head on ${percent(r.int8.agreement)} of ${r.int8.clips} clips; top-1 ${percent(r.int8.int8_accuracy)} int8 vs ${percent(r.int8.float_accuracy)} float`);
  if (r.int8 && r.int8.warning) add(`warning: ${r.int8.warning}`);
  const cur = job.current_result;
  if (cur) add(cur.accuracy != null ? `current model on the same clips: ${percent(cur.accuracy)} (it may have trained on some of them)` : `current model: ${cur.note}`);
  add(`trained in ${r.seconds.toFixed(0)} s, pictures fitted by ${r.fit}`);
  report.append(lines);
  if (r.cv_confusion) report.append(matrix(r.classes, r.cv_confusion));
}

async function showJob(id) {
  jobId = id;
  clearTimeout(polling);
  try {
    const job = await call("GET", "api/teach/jobs/" + encodeURIComponent(id));
    renderJob(job);
    if (["queued", "running"].includes(job.state)) polling = setTimeout(() => showJob(id), 1000);
    else refresh();
  } catch (e) {
    problem(e.message);
  }
}

$("cancel").addEventListener("click", () => act(() => call("POST", `api/teach/jobs/${jobId}/cancel`)));
$("deploy").addEventListener("click", () => act(() => call("POST", `api/teach/jobs/${jobId}/deploy`)));
$("undo").addEventListener("click", () => act(() => call("POST", "api/teach/undo")));

refresh().then(() => {
  const running = data && data.jobs.find((j) => ["queued", "running"].includes(j.state));
  if (running) showJob(running.id);
});
