/* The gallery feeds the run renderer: server-sent events bring each new state; reviews are posted back. */
(function () {
  "use strict";
  var root = document.getElementById("thinkedit-run");
  var initial = JSON.parse(document.getElementById("thinkedit-run-data").textContent);
  var base = "../api/runs/" + encodeURIComponent(initial.run_id);
  root.insertAdjacentHTML("beforebegin", '<nav class="te-run" style="padding-bottom:0"><a href="../">← all runs</a></nav>');
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
