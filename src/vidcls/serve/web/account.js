// Every page's header: who is signed in, a sign-out button, and links only to the pages
// this server has (no Events or Teach without a data folder) and the caller may use (no
// Teach for viewers).
"use strict";

(async () => {
  const r = await fetch("api/me");
  if (!r.ok) return;
  const me = await r.json();
  const nav = document.querySelector("header.bar nav");
  if (!nav) return;
  const pages = me.pages || {};
  const gone = (page) => page === "teach" ? !pages.teach || me.role !== "admin" : !pages[page];
  for (const page of ["events", "teach"]) {
    if (gone(page)) nav.querySelectorAll(`a[href="${page}"]`).forEach((a) => a.remove());
  }
  nav.dataset.pages = "checked";  // the links left are the ones that work
  if (!me.auth) return;
  const who = document.createElement("span");
  who.className = "account";
  who.textContent = `${me.name} (${me.role})`;
  const out = document.createElement("button");
  out.type = "button";
  out.className = "btn";
  out.id = "signout";
  out.textContent = "Sign out";
  out.addEventListener("click", async () => {
    await fetch("logout", { method: "POST" });
    location.href = "login";
  });
  nav.append(who, out);
})();
