// The events page's "Cameras" strip: GET /api/groups every few seconds, shown as node ->
// groups -> cameras, each with a state dot and its load. Hidden without a config (404).
"use strict";

(() => {
  const EVERY = 3000;  // ms between looks
  const card = document.getElementById("groups");
  const nodes = document.getElementById("nodes");
  const summary = document.getElementById("groups-summary");
  const OK = new Set(["running"]);
  const WAIT = new Set(["starting", "restarting", "not placed"]);

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function dot(good, waiting) {
    return el("span", "dot " + (good ? "ok" : waiting ? "wait" : "bad"));
  }

  function group(g) {
    const box = el("div", "group");
    box.dataset.state = g.state;
    const head = el("div", "group-head");
    head.append(dot(OK.has(g.state), WAIT.has(g.state)));
    let state = g.state === "starting" && g.deaths > 0 ? "starting again" : g.state;
    if (g.deaths > 0) state += ` · ${g.deaths} death${g.deaths > 1 ? "s" : ""}`;
    head.append(el("strong", "", `group ${g.index}`), el("span", "muted", state));
    const load = [];
    if (g.pid) load.push(`pid ${g.pid}`);
    if (g.cpu !== null) load.push(`${Math.round(g.cpu * 100)}% CPU`);
    load.push(`${g.results_per_s.toFixed(1)} results/s`);
    head.append(el("span", "muted load", load.join(" · ")));
    box.append(head);
    if (g.error) box.append(el("div", "muted group-error", g.error));
    const cams = el("ul", "group-cameras");
    for (const c of g.cameras) {
      const li = el("li");
      li.append(dot(c.online, false), el("span", "", c.name));
      li.append(el("span", "muted", `${c.results_per_s.toFixed(1)}/s`));
      cams.append(li);
    }
    box.append(cams);
    return box;
  }

  function node(title, detail, alive, groups) {
    const box = el("div", "node");
    const head = el("div", "node-head");
    head.append(dot(alive, false), el("strong", "", title), el("span", "muted", detail));
    box.append(head);
    for (const g of groups) box.append(group(g));
    return box;
  }

  function render(doc) {
    const out = [];
    if (doc.nodes === null) {
      const g0 = doc.groups[0];
      out.push(node(g0 ? g0.host : "this machine", "this machine", true, doc.groups));
    } else {
      for (const n of doc.nodes) {
        const mine = doc.groups.filter((g) => g.node === n.id);
        const cpus = `${n.cpus_free}/${n.cpus} CPUs free · ${n.address || ""}`;
        if (n.alive || mine.length) out.push(node(n.host || n.id.slice(0, 12), cpus, n.alive, mine));
      }
      const nowhere = doc.groups.filter((g) => g.node === null || !doc.nodes.some((n) => n.id === g.node));
      if (nowhere.length) out.push(node("no node", "waiting for room", false, nowhere));
    }
    nodes.replaceChildren(...out);
    const cams = doc.groups.reduce((k, g) => k + g.cameras.length, 0);
    const running = doc.groups.filter((g) => g.state === "running").length;
    summary.textContent = `${cams} in ${doc.groups.length} group${doc.groups.length > 1 ? "s" : ""}, ${running} running` +
      (doc.cameras === "done" ? " · ended" : "");
    card.hidden = false;
  }

  async function look() {
    try {
      const r = await fetch("api/groups", { cache: "no-store" });
      if (r.status === 404) { card.hidden = true; return; }  // no config: nothing to show
      if (r.ok) render(await r.json());
    } catch (e) {
      // the server is away for a moment: keep what was shown, look again later
    }
    setTimeout(look, EVERY);
  }

  look();
})();
