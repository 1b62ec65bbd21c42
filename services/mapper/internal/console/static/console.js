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
  // Copy buttons: data-copy names the input whose value is copied.
  document.addEventListener("click", function (ev) {
    var b = ev.target;
    var id = b && b.getAttribute && b.getAttribute("data-copy");
    if (!id) return;
    var el = document.getElementById(id);
    if (!el) return;
    el.select();
    var done = function () { b.textContent = "Copied"; };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(el.value).then(done, function () { document.execCommand("copy"); done(); });
    } else { document.execCommand("copy"); done(); }
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
