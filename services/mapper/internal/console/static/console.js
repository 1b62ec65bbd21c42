// ownersync console: optional enhancements. Every page works without this script.
(function () {
  "use strict";
  // Confirmations: forms with data-confirm ask in place; without JS the server shows a page.
  document.addEventListener("submit", function (ev) {
    var f = ev.target;
    var q = f.getAttribute && f.getAttribute("data-confirm");
    if (!q) return;
    if (!window.confirm(q)) { ev.preventDefault(); return; }
    var c = f.querySelector('input[name="confirm"]');
    if (c) c.value = "yes";
  });
  // Live progress of a running Sync Users run; reloads the page when the run ends.
  var run = document.getElementById("run");
  var url = run && run.getAttribute("data-progress-url");
  if (!url) return;
  var every = parseInt(run.getAttribute("data-poll-ms"), 10) || 1000;
  function set(id, v) { var el = document.getElementById(id); if (el) el.textContent = String(v === "" ? "—" : v); }
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (p) {
        set("run-state", p.state); set("run-phase", p.phase); set("run-pulled", p.pulled); set("run-processed", p.processed);
        if (p.running) { setTimeout(poll, every); } else { window.location.reload(); }
      })
      .catch(function () { setTimeout(poll, every * 3); });
  }
  setTimeout(poll, every);
})();
