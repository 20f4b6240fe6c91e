// Every page's header: who is signed in, a sign-out button, and no Teach link for viewers.
"use strict";

(async () => {
  const r = await fetch("api/me");
  if (!r.ok) return;
  const me = await r.json();
  const nav = document.querySelector("header.bar nav");
  if (!nav) return;
  if (me.role !== "admin") {
    nav.querySelectorAll('a[href="teach"]').forEach((a) => a.remove());
  }
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
