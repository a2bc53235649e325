/* thinkedit run view: draw one run (its trajectory JSON) as a page; report.html, the MCP App and the gallery feed it. */
(function () {
  "use strict";

  var SERIES = [["semantic", "var(--sem)"], ["quality", "var(--qual)"], ["overall", "var(--over)"]];
  var ACTIVE = { running: 1, awaiting_review: 1 };

  function esc(value) {
    return String(value == null ? "" : value).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function isNum(v) { return typeof v === "number" && isFinite(v); }
  function fmt(v, digits) {
    // The one number format of every run view: grouped thousands, at most `digits` (2) decimals.
    if (!isNum(v)) return v == null ? "" : String(v);
    return v.toLocaleString(undefined, { maximumFractionDigits: digits == null ? 2 : digits });
  }
  function when(iso) {
    // A stored UTC time, shown in the reader's zone and words; a value that is not a time, as it is.
    var t = iso ? new Date(iso) : null;
    if (!t || isNaN(t.getTime())) return iso == null ? "" : String(iso);
    return t.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  }
  function timeTag(iso) { return '<time datetime="' + esc(iso) + '">' + esc(when(iso)) + "</time>"; }
  function roundsText(n, max, finished) {
    // "1 round", "3 rounds"; while a run goes on, "2 of at most 5 rounds".
    var word = n === 1 ? " round" : " rounds";
    return finished || !max ? fmt(n) + word : fmt(n) + " of at most " + fmt(max) + (max === 1 ? " round" : " rounds");
  }
  function firstLine(text) { return String(text == null ? "" : text).split("\n")[0].slice(0, 300); }
  function plain(v) {
    if (v == null) return "";
    if (typeof v !== "object") return fmt(v, 4);
    return Object.keys(v).map(function (k) { return k + " " + plain(v[k]); }).join(" · ");
  }
  function section(label, text) {
    if (text == null || text === "") return "";
    return '<div class="te-label">' + esc(label) + "</div><pre>" + esc(text) + "</pre>";
  }
  function usageText(u) {
    // A round's or a run's usage (images edited, tokens, estimated price), else its fields as they come.
    if (!u || typeof u !== "object" || !("images_edited" in u || "thinker_input_tokens" in u)) return plain(u);
    var tin = (Number(u.thinker_input_tokens) || 0) + (Number(u.editor_input_tokens) || 0);
    var tout = (Number(u.thinker_output_tokens) || 0) + (Number(u.editor_output_tokens) || 0);
    var counted = tin + tout + (Number(u.images_edited) || 0) + (Number(u.critiques) || 0) > 0;
    // Nothing counted (a run that failed before its first edit): no price is known, whatever the sum says.
    var price = isNum(u.cost_usd) && (counted || u.cost_usd > 0) ? "~$" + fmt(u.cost_usd, 4) : "price unknown";
    return fmt(Number(u.images_edited) || 0) + " image(s) edited · " + fmt(tin) + " tokens in · " + fmt(tout) + " out · " + price;
  }
  function extrasOf(obj) {
    // Cost, usage and budget fields (when a provider reports them) are shown whatever their exact names.
    var out = [];
    Object.keys(obj || {}).forEach(function (k) {
      if (/cost|usage|tokens|budget/i.test(k) && obj[k] != null && obj[k] !== "") {
        out.push([k === "usage" ? "cost" : k.replace(/_/g, " "), /usage/.test(k) ? usageText(obj[k]) : plain(obj[k])]);
      }
    });
    return out;
  }

  function chart(rounds, best, settings) {
    var W = 600, H = 230, L = 34, R = 12, T = 12, B = 30, n = rounds.length;
    var x = function (i) { return n <= 1 ? (L + W - R) / 2 : L + (i * (W - L - R)) / (n - 1); };
    var y = function (v) { return T + ((10 - v) * (H - T - B)) / 10; };
    var parts = ['<svg viewBox="0 0 ' + W + " " + H + '" role="img" aria-label="Scores per round"><title>Scores per round</title>'];
    for (var g = 0; g <= 10; g += 2) {
      parts.push('<line x1="' + L + '" x2="' + (W - R) + '" y1="' + y(g) + '" y2="' + y(g) + '" stroke="#e3e8ee"/>' +
        '<text x="' + (L - 6) + '" y="' + (y(g) + 4) + '" font-size="11" text-anchor="end" fill="#59636e">' + g + "</text>");
    }
    var thresholds = settings ? [settings.semantic_threshold, settings.quality_threshold] : [];
    thresholds.filter(isNum).forEach(function (t, k) {
      parts.push('<line class="te-threshold" x1="' + L + '" x2="' + (W - R) + '" y1="' + y(t) + '" y2="' + y(t) +
        '" stroke="' + SERIES[k][1] + '" stroke-dasharray="4 4" stroke-opacity=".6"/>');
    });
    rounds.forEach(function (r, i) {
      if (r.index === best) {
        var half = n <= 1 ? 40 : Math.min(40, (W - L - R) / (n - 1) / 2);
        var x0 = Math.max(L, x(i) - half), x1 = Math.min(W - R, x(i) + half);
        parts.push('<rect class="te-chosen-band" x="' + x0 + '" y="' + T + '" width="' + (x1 - x0) + '" height="' +
          (H - T - B) + '" fill="#2f7d32" fill-opacity=".12"/>');
      }
      parts.push('<text x="' + x(i) + '" y="' + (H - 10) + '" font-size="11" text-anchor="middle" fill="#59636e">' +
        (r.index === best ? "★ " : "") + esc(r.index) + "</text>");
    });
    SERIES.forEach(function (s) {
      var pts = [];
      rounds.forEach(function (r, i) { if (isNum(r[s[0]])) pts.push([x(i), y(r[s[0]]), r]); });
      parts.push('<polyline class="te-series-' + s[0] + '" fill="none" stroke="' + s[1] + '" stroke-width="2.5" points="' +
        pts.map(function (p) { return p[0].toFixed(1) + "," + p[1].toFixed(1); }).join(" ") + '"/>');
      pts.forEach(function (p) {
        parts.push('<circle class="te-point-' + s[0] + '" cx="' + p[0].toFixed(1) + '" cy="' + p[1].toFixed(1) + '" r="4" fill="' +
          s[1] + '"><title>round ' + esc(p[2].index) + " " + s[0] + " " + fmt(p[2][s[0]]) + "</title></circle>");
      });
    });
    parts.push("</svg>");
    var legend = SERIES.map(function (s) { return '<span><i style="background:' + s[1] + '"></i>' + s[0] + "</span>"; });
    if (best != null) legend.push("<span>★ chosen round</span>");
    return parts.join("") + '<div class="te-legend">' + legend.join("") + "</div>";
  }

  function mount(root, options) {
    options = options || {};
    var st = { data: null, compare: {}, raw: {}, cache: {}, draft: null, busy: false, answered: null };

    function key(img) { return img ? (img.sha256 || img.resource_uri || img.uri || "") : ""; }
    function src(img) {
      if (!img) return "";
      return img.src || st.cache[key(img)] || "";
    }
    function imgTag(img, alt, round) {
      var s = src(img), dims = img && img.width ? ' width="' + esc(img.width) + '" height="' + esc(img.height) + '"' : "";
      return '<img alt="' + esc(alt) + '"' + dims + (round != null ? ' data-compare="' + esc(round) + '"' : "") +
        (s ? ' src="' + esc(s) + '"' : ' data-pending="' + esc(key(img)) + '"') + ">";
    }

    function meta(d) {
      var rows = [], s = d.settings || {}, rounds = d.rounds || [];
      var n = rounds.length, max = s.max_rounds || d.max_rounds;
      rows.push(["Status", '<span class="te-badge ' + esc(d.status) + '">' + esc(String(d.status || "").replace("_", " ")) + "</span>" +
        (d.stop_reason ? " · stop reason <b>" + esc(d.stop_reason) + "</b>" : "")]);
      rows.push(["Chosen round", d.best_round != null ? "round " + esc(d.best_round) + " of " + fmt(n) :
        ACTIVE[d.status] ? "not yet (" + esc(roundsText(n, max, false)) + " so far)" : "none (" + esc(roundsText(n, null, true)) + ")"]);
      ["editor", "thinker"].forEach(function (side) {
        var model = d[side] || (s[side] && s[side].model), backend = s[side] && s[side].backend;
        if (model) rows.push([side.charAt(0).toUpperCase() + side.slice(1), esc(model) + (backend ? " <small>(" + esc(backend) + ")</small>" : "")]);
      });
      if (d.profile) rows.push(["Profile", esc(d.profile)]);
      var loop = [];
      if (max) loop.push("max " + roundsText(max, null, true));
      if (isNum(s.semantic_threshold)) loop.push("stop at semantic ≥ " + fmt(s.semantic_threshold) + " and quality ≥ " + fmt(s.quality_threshold));
      if (s.edit_from) loop.push("edit from " + s.edit_from);
      if (s.selection) loop.push("return " + s.selection);
      if (isNum(s.seed)) loop.push("seed " + s.seed + (s.seed_policy ? " (" + s.seed_policy + ")" : ""));
      if (s.candidates > 1) loop.push("best of " + s.candidates);
      if (s.review) loop.push("human review");
      if (loop.length) rows.push(["Settings", esc(loop.join(" · "))]);
      var edit = 0, think = 0;
      rounds.forEach(function (r) { edit += Number(r.edit_seconds) || 0; think += Number(r.think_seconds) || 0; });
      if (n) rows.push(["Time", "edit " + fmt(edit) + " s · think " + fmt(think) + " s"]);
      if (d.created_at) rows.push(["Started", timeTag(d.created_at) + (d.updated_at ? " · updated " + timeTag(d.updated_at) : "")]);
      extrasOf(d).forEach(function (e) { rows.push([e[0], esc(e[1])]); });
      return '<dl class="te-meta">' + rows.map(function (r) { return "<dt>" + esc(r[0]) + "</dt><dd>" + r[1] + "</dd>"; }).join("") + "</dl>";
    }

    function review(d) {
      var rv = d.review;
      if (!rv || d.status !== "awaiting_review") return "";
      var proposed = st.draft && st.draft.round === rv.round ? st.draft.text : rv.proposed_instruction || "";
      var html = '<section class="te-review" data-review-round="' + esc(rv.round) + '"><b>Awaiting review after round ' + esc(rv.round) +
        "</b> (semantic " + esc(fmt(rv.semantic)) + " · quality " + esc(fmt(rv.quality)) + ")" + section("Reasoning", rv.reasoning);
      if (!options.onReview) return html + section("Proposed instruction", rv.proposed_instruction) + "</section>";
      if (st.answered && st.answered.round === rv.round) {
        return html + section("Your answer", st.answered.decision + (st.answered.instruction ? ": " + st.answered.instruction : "")) +
          "<p>Sent · waiting for the run to go on…</p></section>";
      }
      return html + '<div class="te-label">Next instruction (edit it to replace the proposal)</div>' +
        '<textarea class="te-review-text">' + esc(proposed) + "</textarea>" +
        '<button class="primary" data-review="approve"' + (st.busy ? " disabled" : "") + ">Approve proposal</button>" +
        '<button data-review="edit"' + (st.busy ? " disabled" : "") + ">Use my instruction</button>" +
        '<button data-review="stop"' + (st.busy ? " disabled" : "") + ">Stop here</button>" +
        (st.busy ? " <span>sending…</span>" : "") + "</section>";
    }

    function card(d, r) {
      var chosen = r.index === d.best_round, showSource = !!st.compare[r.index];
      var shown = showSource ? d.source_image : r.image;
      var scores = isNum(r.semantic)
        ? "semantic " + fmt(r.semantic) + " · quality " + fmt(r.quality) + " · overall " + fmt(r.overall)
        : "not critiqued yet";
      var candidates = (r.candidates || []).map(function (c) { return "seed " + c.seed + ": " + fmt(c.overall); }).join(", ");
      var timing = "edit " + fmt(Number(r.edit_seconds) || 0) + " s · think " + fmt(Number(r.think_seconds) || 0) + " s" +
        (r.seed != null ? " · seed " + r.seed : "");
      var n = esc(r.index);
      var extras = extrasOf(r).map(function (e) { return e[0] + " " + e[1]; }).join(" · ");
      return '<figure class="te-card te-round' + (chosen ? " chosen" : "") + '" data-round="' + n + '">' +
        '<div class="te-frame">' + imgTag(shown, showSource ? "Source" : "Round " + r.index, r.index) +
        '<span class="te-showing">' + (showSource ? "source" : "round " + n) + "</span></div>" +
        "<figcaption><b>Round " + n + "</b>" + (chosen ? '<span class="te-tag">chosen</span>' : "") +
        ' <button data-compare="' + n + '" aria-pressed="' + showSource + '">' +
        (showSource ? "Show round " + n : "Compare with source") + "</button>" +
        '<div class="te-scores">' + esc(scores) + "</div>" +
        section("Instruction used", r.instruction) + section("Reasoning", r.reasoning) +
        section("Refined instruction", r.refined_instruction) + section("Best of candidates", candidates) +
        section("Timing", timing) + section("Cost", extras) + section("Seed", r.seed_note) +
        (r.raw_thinker_output ? '<details data-raw="' + n + '"' + (st.raw[r.index] ? " open" : "") +
          "><summary>Raw thinker output</summary><pre>" + esc(r.raw_thinker_output) + "</pre></details>" : "") +
        "</figcaption></figure>";
    }

    function progressLine(d) {
      if (d.progress) return d.progress;
      if (d.status === "running") return "running · " + roundsText((d.rounds || []).length, null, true) + " so far";
      return "";
    }

    function render() {
      var d = st.data, rounds = d.rounds || [], srcImg = d.source_image;
      var html = "<h1>Think-while-Edit run <code>" + esc(d.run_id) + '</code> <span class="te-badge ' + esc(d.status) + '">' +
        esc(String(d.status || "").replace("_", " ")) + "</span></h1>" +
        '<p class="te-instruction">“' + esc(d.instruction) + "”</p>" +
        '<div class="te-progress" aria-live="polite">' + esc(progressLine(d)) + "</div>" +
        (d.error ? '<div class="te-error">' + esc(firstLine(d.error)) + "</div>" : "") +
        (d.demo_note ? '<div class="te-warn">' + esc(d.demo_note) + "</div>" : "") +
        review(d) +
        '<div class="te-top">' + meta(d) + '<div class="te-chart">' + (rounds.length ? chart(rounds, d.best_round, d.settings) :
          "<p>No rounds yet.</p>") + "</div></div>" +
        '<div class="te-grid">' +
        '<figure class="te-card te-source"><div class="te-frame">' +
        imgTag(srcImg, "Source") + "</div><figcaption><b>Source" +
        (srcImg && srcImg.width ? " (" + esc(srcImg.width) + "×" + esc(srcImg.height) + ")" : "") + "</b>" +
        section("Original instruction", d.instruction) + "</figcaption></figure>" +
        (d.reference_images || []).map(function (ref, i) {
          return '<figure class="te-card te-reference"><div class="te-frame">' + imgTag(ref, "Reference image " + (i + 2)) +
            "</div><figcaption><b>Reference: image " + (i + 2) +
            (ref && ref.width ? " (" + esc(ref.width) + "×" + esc(ref.height) + ")" : "") + "</b></figcaption></figure>";
        }).join("") +
        rounds.map(function (r) { return card(d, r); }).join("") + "</div>";
      root.innerHTML = html;
      resolvePending();
    }

    function resolvePending() {
      if (!options.resolveImage) return;
      var all = [st.data.source_image].concat(st.data.reference_images || [],
        (st.data.rounds || []).map(function (r) { return r.image; }));
      all.forEach(function (img) {
        var k = key(img);
        if (!img || img.src || st.cache[k] || st.cache[k + "?"]) return;
        st.cache[k + "?"] = true;
        Promise.resolve(options.resolveImage(img)).then(function (url) {
          if (!url) { delete st.cache[k + "?"]; return; }  // not available yet: ask again at the next update
          st.cache[k] = url;
          root.querySelectorAll("img[data-pending]").forEach(function (el) {
            if (el.getAttribute("data-pending") === k) { el.src = url; el.removeAttribute("data-pending"); }
          });
        }, function () { delete st.cache[k + "?"]; });
      });
    }

    root.addEventListener("click", function (ev) {
      var t = ev.target.closest ? ev.target.closest("[data-compare],[data-review]") : null;
      if (!t || !root.contains(t)) return;
      if (t.hasAttribute("data-compare")) {
        var n = Number(t.getAttribute("data-compare"));
        st.compare[n] = !st.compare[n];
        render();
      } else if (options.onReview && !st.busy) {
        var text = root.querySelector(".te-review-text");
        var decision = t.getAttribute("data-review"), instruction = text ? text.value.trim() : "";
        st.busy = true;
        render();
        var answer = decision === "edit" ? { decision: "edit", instruction: instruction } : { decision: decision };
        var round = st.data.review && st.data.review.round;
        if (typeof round === "number") answer.round = round;  // a run paused at another round by now refuses it
        Promise.resolve(options.onReview(answer))
          .then(function () { st.busy = false; st.draft = null; st.answered = Object.assign({ round: round }, answer); render(); },
                function (err) { st.busy = false; render(); root.querySelector(".te-progress").textContent = "review failed: " + err; });
      }
    });
    root.addEventListener("toggle", function (ev) {
      var t = ev.target;
      if (t && t.hasAttribute && t.hasAttribute("data-raw")) st.raw[t.getAttribute("data-raw")] = t.open;
    }, true);
    root.addEventListener("input", function (ev) {
      if (ev.target.classList.contains("te-review-text") && st.data.review) st.draft = { round: st.data.review.round, text: ev.target.value };
    });

    return {
      update: function (data) { st.data = data; render(); },
      data: function () { return st.data; },
    };
  }

  window.ThinkeditRun = { mount: mount, esc: esc, fmt: fmt, when: when, roundsText: roundsText, firstLine: firstLine };
  var root = document.getElementById("thinkedit-run"), initial = document.getElementById("thinkedit-run-data");
  if (root && !root.hasAttribute("data-feed") && initial && initial.textContent.trim()) {
    window.thinkeditView = mount(root, {});
    window.thinkeditView.update(JSON.parse(initial.textContent));
  }
})();
