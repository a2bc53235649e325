/* The gallery's list page: run cards (refreshed while any run is active) and the new-run form. */
(function () {
  "use strict";
  var R = window.ThinkeditRun, esc = R.esc;
  var list = document.getElementById("runs");
  var ACTIVE = { running: 1, awaiting_review: 1 };

  function card(r) {
    var scores = r.overall == null ? "no scores yet" :
      "semantic " + R.fmt(r.semantic) + " · quality " + R.fmt(r.quality) + " · overall " + R.fmt(r.overall);
    var rounds = R.roundsText(r.rounds, r.max_rounds, !ACTIVE[r.status]) + (r.best_round ? " · chose round " + r.best_round : "");
    return '<a class="run" data-run="' + esc(r.run_id) + '" data-status="' + esc(r.status) + '" href="runs/' + esc(r.run_id) + '">' +
      '<img loading="lazy" alt="" src="' + esc(r.thumbnail) + '">' +
      '<div class="instr">' + esc(r.instruction) + "</div>" +
      (r.demo_note ? '<small class="demo">' + esc(r.demo_note) + "</small>" : "") +
      '<span class="badge ' + esc(r.status) + '">' + esc(String(r.status).replace("_", " ")) + "</span> " +
      "<small>" + esc(rounds) + "</small>" +
      (r.error ? '<small class="error">' + esc(R.firstLine(r.error)) + "</small>" : "") +
      "<small>" + esc(scores) + "</small><small>" + esc(r.editor + " + " + r.thinker) + " · " +
      '<time datetime="' + esc(r.created_at) + '">' + esc(R.when(r.created_at)) + "</time></small></a>";
  }

  function refresh() {
    return fetch("api/runs").then(function (res) { return res.json(); }).then(function (body) {
      var runs = body.runs || [];
      list.innerHTML = runs.length ? runs.map(card).join("") : '<p class="empty">No runs yet: start one above, or with thinkedit edit.</p>';
      var active = runs.some(function (r) { return r.status === "running" || r.status === "awaiting_review"; });
      setTimeout(refresh, active ? 1500 : 5000);
    }, function () { setTimeout(refresh, 5000); });
  }

  document.getElementById("new-run").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var form = ev.target, error = document.getElementById("form-error");
    error.textContent = "";
    form.querySelector("button").disabled = true;
    fetch("api/runs", { method: "POST", body: new FormData(form) }).then(function (res) {
      return res.json().then(function (body) {
        if (!res.ok) throw new Error(body.error || (body.detail && JSON.stringify(body.detail)) || res.statusText);
        window.location.href = body.url;
      });
    }).catch(function (err) {
      error.textContent = String(err.message || err);
      form.querySelector("button").disabled = false;
    });
  });
  refresh();
})();
