// File page: upload a video to /v1/classify with progress, then show the result.
"use strict";

const f = {
  form: $("#form"), input: $("#input"), drop: $("#drop"), chosen: $("#chosen"), hint: $("#hint"),
  model: $("#model"), fps: $("#fps"), topk: $("#topk"), window: $("#window"), submit: $("#submit"),
  progress: $("#progress"), bar: $("#bar"), spinner: $("#spinner"), phase: $("#phase"), error: $("#error"),
  result: $("#result"), meta: $("#meta"), summary: $("#summary"), plot: $("#plot"), plotLink: $("#plot-link"),
  segments: $("#segments tbody"), segmentsTitle: $("#segments-title"),
  frames: $("#frames tbody"), framesTitle: $("#frames-title"), download: $("#download"),
};
let maxUpload = Infinity;
let chosenFile = null;
let lastDoc = null;

function sizeText(bytes) {
  if (bytes < 1 << 20) return `${Math.ceil(bytes / 1024)} KB`;
  return `${Number((bytes / (1 << 20)).toFixed(1))} MB`;
}

function choose(file) {
  chosenFile = file || null;
  f.chosen.textContent = file ? file.name : "Choose a video";
  f.hint.textContent = file ? sizeText(file.size) : "or drop it here";
  f.submit.disabled = !file;
  f.error.hidden = true;
}

function showError(text) {
  f.error.textContent = text;
  f.error.hidden = false;
  f.progress.hidden = true;
  f.submit.disabled = !chosenFile;
}

function setPhase(text, fraction, busy) {
  f.progress.hidden = false;
  f.phase.textContent = text;
  f.bar.style.width = `${Math.round(fraction * 100)}%`;
  f.spinner.hidden = !busy;
}

function submit(event) {
  event.preventDefault();
  const file = chosenFile;
  if (!file) return;
  if (file.size > maxUpload) {
    showError(`${file.name} is ${sizeText(file.size)}; this server takes at most ${sizeText(maxUpload)}.`);
    return;
  }
  const params = new URLSearchParams({ model: f.model.value, top_k: f.topk.value, segments: "true", plot: "true" });
  if (f.fps.value) params.set("fps", f.fps.value);
  if (f.window.value) params.set("window", f.window.value);
  const form = new FormData();
  form.append("file", file);
  const xhr = new XMLHttpRequest();
  xhr.open("POST", `v1/classify?${params}`);
  xhr.responseType = "json";
  const started = performance.now();
  xhr.upload.onprogress = (e) => {
    if (e.lengthComputable) setPhase(`Uploading ${Math.round((e.loaded / e.total) * 100)}%`, e.loaded / e.total, false);
  };
  xhr.upload.onload = () => setPhase("Classifying…", 1, true);
  xhr.onload = () => {
    f.progress.hidden = true;
    f.submit.disabled = false;
    if (xhr.status !== 200) {
      showError(errorText(xhr.response, xhr.status));
      return;
    }
    showResult(xhr.response, (performance.now() - started) / 1000);
  };
  xhr.onerror = () => showError("The upload failed: the connection was closed.");
  f.error.hidden = true;
  f.submit.disabled = true;
  setPhase("Uploading 0%", 0, false);
  xhr.send(form);
}

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  row.append(td);
  return td;
}

function showResult(doc, seconds) {
  lastDoc = doc;
  const fps = doc.fps == null ? "every frame" : `${doc.fps} fps`; // null: every decoded frame
  const last = doc.frames.length ? doc.frames[doc.frames.length - 1].time : 0;
  f.meta.textContent = `${doc.source} · ${doc.model} · ${fps} · ${doc.frames.length} frames fed`
    + ` over ${formatTime(last)} · ${seconds.toFixed(1)} s`;
  resultRows(f.summary, doc.summary.top.length);
  renderTop(f.summary, doc.summary.top);

  f.plot.hidden = !doc.plot;
  if (doc.plot) {
    f.plot.src = doc.plot;
    // A blob URL opens in a new tab (browsers refuse to navigate to data: URLs).
    fetch(doc.plot).then((r) => r.blob()).then((blob) => {
      if (f.plotLink.href) URL.revokeObjectURL(f.plotLink.href);
      f.plotLink.href = URL.createObjectURL(blob);
    });
  }

  const segments = doc.segments || [];
  f.segmentsTitle.textContent = `Action segments (${segments.length})`;
  f.segments.replaceChildren();
  for (const s of segments) {
    const tr = document.createElement("tr");
    cell(tr, formatTime(s.start));
    cell(tr, formatTime(s.end));
    cell(tr, s.label);
    cell(tr, s.peak.toFixed(2), "num");
    f.segments.append(tr);
  }
  if (!segments.length) {
    const tr = document.createElement("tr");
    cell(tr, "no action held long enough to make a segment", "muted").colSpan = 4;
    f.segments.append(tr);
  }

  f.framesTitle.textContent = `Frames (${doc.frames.length})`;
  const rows = doc.frames.map((fr) => {
    const tr = document.createElement("tr");
    const [first, ...rest] = fr.top;
    cell(tr, formatTime(fr.time));
    cell(tr, first ? first.label : "–");
    cell(tr, first ? first.score.toFixed(3) : "", "num");
    cell(tr, rest.map((c) => `${c.label} ${c.score.toFixed(3)}`).join(", "), "muted wrap");
    return tr;
  });
  f.frames.replaceChildren(...rows);
  f.result.hidden = false;
  f.result.scrollIntoView({ behavior: "smooth", block: "start" });
}

function download() {
  if (!lastDoc) return;
  const { plot, ...doc } = lastDoc; // the plot is shown, not part of the classify document
  const blob = new Blob([`${JSON.stringify(doc, null, 2)}\n`], { type: "application/json" });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = `${doc.source.replace(/\.[^.]*$/, "")}.vidcls.json`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

async function init() {
  f.input.onchange = () => choose(f.input.files[0]);
  f.form.onsubmit = submit;
  f.download.onclick = download;
  for (const name of ["dragenter", "dragover"]) {
    f.drop.addEventListener(name, (e) => { e.preventDefault(); f.drop.classList.add("over"); });
  }
  for (const name of ["dragleave", "drop"]) {
    f.drop.addEventListener(name, () => f.drop.classList.remove("over"));
  }
  f.drop.addEventListener("drop", (e) => {
    e.preventDefault();
    if (e.dataTransfer.files.length) choose(e.dataTransfer.files[0]);
  });
  try {
    const info = await fetchJSON("v1/models");
    fillModels(f.model, info);
    maxUpload = info.limits.max_upload_bytes;
    f.hint.textContent = `or drop it here · up to ${sizeText(maxUpload)}`;
  } catch (e) {
    showError(`The server cannot be reached (${e.message}).`);
  }
}

init();
