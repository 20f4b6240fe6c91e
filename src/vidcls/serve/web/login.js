// The sign-in page: POST /login, then back to the page that sent us here.
"use strict";

const form = document.getElementById("signin");
const problem = document.getElementById("problem");

/** Where to go once signed in: a path on this site only. */
function nextPage() {
  const next = new URLSearchParams(location.search).get("next") || "./";
  return next.startsWith("/") && !next.startsWith("//") ? next : "./";
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  problem.hidden = true;
  const body = {
    name: document.getElementById("name").value,
    password: document.getElementById("password").value,
  };
  const r = await fetch("login", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (r.ok) {
    location.href = nextPage();
    return;
  }
  const answer = await r.json().catch(() => ({}));
  problem.textContent = answer.detail || `HTTP ${r.status}`;
  problem.hidden = false;
});
