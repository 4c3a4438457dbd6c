// copilot-quant console: live updates over server-sent events, controls with confirmation. No framework.
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf"]').content;
  const main = document.getElementById("main");
  const badge = document.getElementById("stream");
  const who = document.getElementById("who");
  let pending = null;
  let inflight = false;
  let again = false;

  function flash(text, bad) {
    const box = document.getElementById("flash");
    box.textContent = text;
    box.className = bad ? "bad" : "good";
  }

  function drawCharts() {
    for (const el of document.querySelectorAll(".chart[data-points]")) {
      const points = JSON.parse(el.dataset.points || "[]");
      const trace = { x: points.map((p) => p[0]), y: points.map((p) => p[1]), mode: "lines", name: "P&L" };
      const layout = { margin: { t: 24, r: 12, b: 36, l: 64 }, height: 280, title: { text: el.dataset.label, font: { size: 12 } } };
      el.dataset.count = String(points.length);
      if (window.Plotly) window.Plotly.react(el, [trace], layout, { displayModeBar: false, responsive: true });
    }
  }

  // Re-fetch this page's <main> (X-Partial) and swap it in; at most one request in flight.
  async function refresh() {
    if (inflight) { again = true; return; }
    inflight = true;
    try {
      const response = await fetch(location.href, { headers: { "X-Partial": "1" }, credentials: "same-origin" });
      if (response.ok) {
        main.innerHTML = await response.text();
        drawCharts();
        document.body.dataset.refreshed = String(Date.now());
      }
    } catch (err) {
      // the server is away (engine restarting): the event stream reconnects and refreshes then
    } finally {
      inflight = false;
      if (again) { again = false; schedule(); }
    }
  }

  // At most one refresh per 400 ms, whatever the event rate: a busy engine must not pay for a busy page.
  let lastRefresh = 0;
  function schedule() {
    if (pending) return;
    const wait = Math.max(100, lastRefresh + 400 - Date.now());
    pending = setTimeout(() => { pending = null; lastRefresh = Date.now(); refresh(); }, wait);
  }

  function connect() {
    const source = new EventSource("/events");
    source.addEventListener("hello", () => { badge.textContent = "live"; badge.className = "stream live"; schedule(); });
    for (const kind of ["changed", "engine", "error", "connection", "fill"]) source.addEventListener(kind, schedule);
    source.onerror = () => { badge.textContent = "reconnecting…"; badge.className = "stream down"; };
  }

  async function control(button) {
    const name = who ? who.value.trim() : "";
    if (!name) { flash("Enter your name in 'operator' first: every control is journaled with who did it.", true); who && who.focus(); return; }
    const why = window.prompt(button.dataset.confirm + "\n\nWhy? (journaled)");
    if (why === null) return; // cancelled: nothing happens
    if (!why.trim()) { flash("A reason is required.", true); return; }
    if (!window.confirm(button.dataset.confirm + "\n\nBy " + name + ": " + why)) return;
    const body = { who: name, why: why, order_id: button.dataset.order || null };
    const response = await fetch("/control/" + button.dataset.action, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf }, body: JSON.stringify(body),
    });
    const answer = await response.json().catch(() => ({ error: "HTTP " + response.status }));
    flash(answer.ok ? answer.message : answer.error, !answer.ok);
    schedule();
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (button) { event.preventDefault(); control(button); }
  });
  if (who) {
    who.value = localStorage.getItem("cq-operator") || "";
    who.addEventListener("change", () => localStorage.setItem("cq-operator", who.value.trim()));
  }
  drawCharts();
  connect();
})();
