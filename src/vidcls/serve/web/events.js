// The events page: GET /api/events with the filters, newest first, a page at a time; a click
// plays the event's clip in the page.
"use strict";

const $ = (id) => document.getElementById(id);
const list = $("list");
let next = null;
let shown = 0;

function query(before) {
  const q = new URLSearchParams({ limit: "30" });
  for (const id of ["source", "label"]) {
    if ($(id).value.trim()) q.set(id, $(id).value.trim());
  }
  for (const id of ["since", "until"]) {
    if ($(id).value) q.set(id, new Date($(id).value).toISOString());
  }
  if (before !== null) q.set("before", String(before));
  return "api/events?" + q;
}

function item(e) {
  const li = document.createElement("li");
  li.className = "event";
  li.dataset.id = e.id;
  const img = document.createElement("img");
  img.alt = e.label;
  img.loading = "lazy";
  if (e.snapshot) img.src = e.snapshot.slice(1);
  const text = document.createElement("div");
  const where = e.zone ? `${e.source} · ${e.zone}` : e.source;
  const start = new Date(e.start);
  text.innerHTML = "<strong class='label'></strong><span class='muted where'></span><span class='muted when'></span>";
  text.querySelector(".label").textContent = `${e.label} ${e.peak.toFixed(2)}`;
  text.querySelector(".where").textContent = where;
  text.querySelector(".when").textContent = `${start.toLocaleString()} · ${e.duration.toFixed(1)} s`;
  li.append(img, text);
  if (e.clip) {
    li.classList.add("playable");
    li.addEventListener("click", () => play(e));
  }
  return li;
}

let playing = 0;  // the clip clicked last: retries and copies of older ones stop

function play(e, tries = 0) {
  if (tries === 0) playing++;
  const mine = playing;
  $("player").hidden = false;
  $("clip-note").hidden = $("download").hidden = true;
  $("clip").hidden = false;
  const title = `${e.label} · ${e.zone ? e.source + " · " + e.zone : e.source}`;
  $("playing").textContent = title;
  const video = $("clip");
  // A clip ends a post-roll after its event: the newest may still be being written.
  video.onerror = async () => {
    if (mine !== playing) return;
    const code = video.error ? video.error.code : 0;
    let status = 0;  // what the server says of the clip now (a 1-byte read)
    if (code !== 2) {
      const r = await fetch(e.clip.slice(1), { headers: { Range: "bytes=0-0" } }).catch(() => null);
      status = r ? r.status : 0;
    }
    if (mine !== playing) return;
    if (tries < 15 && (code === 2 || status === 404 || status === 0)) {
      // A network hiccup, or the newest clip still being written: try again.
      if (status === 404) $("playing").textContent = `${title} (the clip is still being written…)`;
      setTimeout(() => { if (mine === playing) play(e, tries + 1); }, code === 2 ? 500 : 2000);
    } else if (status === 200 || status === 206) {
      browserCopy(e, title, mine);  // there, but not in a codec this browser decodes
    } else {
      $("playing").textContent = `${title} (no clip)`;
    }
  };
  video.src = e.clip.slice(1);
  video.play().catch(() => {});
  if (tries === 0) $("player").scrollIntoView({ behavior: "smooth" });
}

// The clip in a codec this browser does not decode: the server makes (once) a copy it can
// play, and says how far along it is; when no copy can be made, the clip can be downloaded.
async function browserCopy(e, title, mine) {
  const video = $("clip");
  const ask = "api/playable/" + e.clip.slice("/media/".length);
  for (let polls = 0, silent = 0; polls < 900; polls++) {
    const r = await fetch(ask).catch(() => null);
    const body = r ? await r.json().catch(() => ({})) : {};
    if (mine !== playing) return;
    if (r && r.status === 200 && body.state === "ready") {
      $("playing").textContent = `${title} (a copy made for the browser)`;
      video.onerror = () => { if (mine === playing) offer(e, title, "this browser cannot play the copy either"); };
      video.src = body.url.slice(1);
      video.play().catch(() => {});
      return;
    }
    if (r && r.status === 200) break;  // "original": browsers play it, but not this one
    const waiting = r && (r.status === 202 || r.status === 503);
    if (!waiting && (r || ++silent > 5)) {
      offer(e, title, body.detail || `no copy can be made (${r ? r.status : "no answer"})`);
      return;
    }
    const done = body.progress ? ` ${Math.round(body.progress * 100)}%` : "";
    $("playing").textContent = `${title} (making a copy this browser can play…${done})`;
    await new Promise((ok) => setTimeout(ok, r && r.status === 503 ? 5000 : 1000));
    if (mine !== playing) return;
  }
  offer(e, title, "this browser cannot play the clip's video codec");
}

function offer(e, title, why) {
  $("playing").textContent = title;
  $("clip").onerror = null;
  $("clip").removeAttribute("src");
  $("clip").hidden = true;  // an empty player at 0:00 says nothing
  $("clip-note").textContent = `Cannot play the clip here: ${why}. Download it to play it in a video player.`;
  $("download").href = e.clip.slice(1);
  $("clip-note").hidden = $("download").hidden = false;
}

let asked = 0;  // the latest load: answers to older ones (a filter typed on) are dropped

async function load(reset) {
  const mine = ++asked;
  $("problem").hidden = true;
  try {
    const r = await fetch(query(reset ? null : next));
    const body = await r.json();
    if (mine !== asked) return;
    if (!r.ok) throw new Error(body.detail || r.statusText);
    if (reset) {
      list.replaceChildren();
      shown = 0;
    }
    for (const e of body.events) list.append(item(e));
    shown += body.events.length;
    next = body.next;
    $("more").hidden = next === null;
    $("empty").hidden = shown > 0;
    $("count").textContent = shown ? `(${shown}${next === null ? "" : "+"})` : "";
    for (const e of body.events) addSource(e.source);
  } catch (err) {
    $("problem").textContent = String(err.message || err);
    $("problem").hidden = false;
  }
}

function addSource(name) {
  const select = $("source");
  if ([...select.options].some((o) => o.value === name)) return;
  const o = document.createElement("option");
  o.value = o.textContent = name;
  select.append(o);
}

$("filters").addEventListener("change", () => load(true));
$("label").addEventListener("input", () => load(true));
$("more").addEventListener("click", () => load(false));
load(true);
setInterval(() => { if (next === null && shown <= 30) load(true); }, 15000);  // new events show up
