/* The gallery feeds the run renderer: server-sent events bring each new state; reviews are posted back. */
(function () {
  "use strict";
  var root = document.getElementById("thinkedit-run");
  var initial = JSON.parse(document.getElementById("thinkedit-run-data").textContent);
  var base = "../api/runs/" + encodeURIComponent(initial.run_id);
  root.insertAdjacentHTML("beforebegin", '<nav class="te-run te-actions"><a href="../">← all runs</a> ' +
    '<button data-action="cancel" hidden>Cancel run</button> <button data-action="delete" hidden>Delete run</button> ' +
    '<span class="te-action-error" role="alert"></span></nav>');
  var nav = root.previousElementSibling;
  function send(method, url) {
    return fetch(url, { method: method }).then(function (res) {
      return res.json().then(function (body) { if (!res.ok) throw new Error(body.error || res.statusText); return body; });
    });
  }
  function showActions(d) {
    // A live or paused run can be cancelled; a finished one deleted (its images stay while other runs use them).
    var active = d.status === "running" || d.status === "awaiting_review";
    nav.querySelector("[data-action=cancel]").hidden = !active;
    nav.querySelector("[data-action=delete]").hidden = active;
  }
  nav.addEventListener("click", function (ev) {
    var action = ev.target.getAttribute && ev.target.getAttribute("data-action");
    if (!action) return;
    var error = nav.querySelector(".te-action-error");
    if (action === "delete" && !ev.target.hasAttribute("data-armed")) {  // a second click confirms
      ev.target.setAttribute("data-armed", "1");
      ev.target.textContent = "Delete run, its files and the images no other run uses?";
      return;
    }
    ev.target.disabled = true;
    error.textContent = "";
    var done = action === "cancel" ? send("POST", base + "/cancel").then(function () { follow(); })
      : send("DELETE", base).then(function () { window.location.href = "../"; });
    done.catch(function (err) { error.textContent = action + " failed: " + (err.message || err); })
      .then(function () { ev.target.disabled = false; });
  });
  var view = window.ThinkeditRun.mount(root, {
    onReview: function (answer) {
      return fetch(base + "/review", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(answer),
      }).then(function (res) {
        return res.json().then(function (body) {
          if (!res.ok) throw new Error(body.error || res.statusText);
          follow();
        });
      });
    },
  });
  window.thinkeditView = view;
  var update = view.update;
  view.update = function (data) { update(data); showActions(data); };
  view.update(initial);
  var source = null;
  function follow() {
    if (source) source.close();
    source = new EventSource(base + "/events");
    source.addEventListener("run", function (ev) { view.update(JSON.parse(ev.data)); });
    source.addEventListener("end", function () { source.close(); });
    source.addEventListener("failed", function (ev) {
      source.close();
      view.update(Object.assign({}, view.data(), { progress: "", error: JSON.parse(ev.data).error, status: "error" }));
    });
  }
  if (initial.status === "running" || initial.status === "awaiting_review") follow();
})();
