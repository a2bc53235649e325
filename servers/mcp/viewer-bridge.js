/* The MCP App bridge: the host (postMessage JSON-RPC, MCP Apps 2026-01-26) feeds the run renderer. */
(function () {
  "use strict";
  var root = document.getElementById("thinkedit-run");
  var nextId = 1, waiting = {}, host = {}, finalPreview = null, current = null, polling = false, gone = false;
  var POLL_WAIT = 3;

  function post(message) { window.parent.postMessage(message, "*"); }
  function request(method, params) {
    var id = nextId++;
    post({ jsonrpc: "2.0", id: id, method: method, params: params || {} });
    return new Promise(function (resolve, reject) { waiting[id] = { resolve: resolve, reject: reject }; });
  }
  function notify(method, params) { post({ jsonrpc: "2.0", method: method, params: params || {} }); }
  function reply(id, result) { post({ jsonrpc: "2.0", id: id, result: result || {} }); }

  function previewUri(img) {
    var m = /^thinkedit:\/\/runs\/([^/]+)\/(source|final)\.png$/.exec(img.resource_uri || "");
    if (m) return "thinkedit://runs/" + m[1] + "/previews/" + m[2] + ".jpg";
    m = /^thinkedit:\/\/runs\/([^/]+)\/rounds\/(\d+)\.png$/.exec(img.resource_uri || "");
    return m ? "thinkedit://runs/" + m[1] + "/previews/round-" + m[2] + ".jpg" : null;
  }
  function resolveImage(img) {
    var uri = previewUri(img);
    var chosen = current && current.final_image && img.sha256 === current.final_image.sha256;
    if (!uri || !host.serverResources) return chosen ? finalPreview : null;
    return request("resources/read", { uri: uri }).then(function (res) {
      var c = res && res.contents && res.contents[0];
      return c && c.blob ? "data:" + (c.mimeType || "image/jpeg") + ";base64," + c.blob : null;
    }, function () { return chosen ? finalPreview : null; });
  }

  function show(data) { current = data; view.update(data); }
  function onResult(result) {
    var sc = result && result.structuredContent;
    (result && result.content || []).forEach(function (block) {
      if (block.type === "image") finalPreview = "data:" + block.mimeType + ";base64," + block.data;
    });
    if (!sc || !sc.run_id || !sc.source_image) {
      var text = (result && result.content || []).filter(function (b) { return b.type === "text"; }).map(function (b) { return b.text; });
      show({ run_id: current ? current.run_id : "", instruction: current ? current.instruction : "", status: "error", rounds: [],
             error: text.join("\n") || "the tool returned no run" });
      return;
    }
    var data = Object.assign({}, sc), extras = result._meta && result._meta["thinkedit/run-view"];
    if (extras) {
      // What the viewer shows beyond the result (models, settings, raw thinker output), for Apps clients only.
      Object.keys(extras).forEach(function (k) { if (k !== "rounds" && !(k in data)) data[k] = extras[k]; });
      data.rounds = (data.rounds || []).map(function (r) {
        return Object.assign({}, (extras.rounds || {})[String(r.index)] || {}, r);
      });
    }
    if (data.status === "done" && data.final_image) data.final_image = Object.assign({}, data.final_image);
    if (data.status === "running") data.progress = "running · " + (data.rounds || []).length + " round(s) so far · following it";
    show(data);
    if (data.status === "running") poll();
  }
  function callTool(name, args) {
    return request("tools/call", { name: name, arguments: args }).then(onResult);
  }
  function poll() {
    if (polling || gone || !host.serverTools) return;
    polling = true;
    callTool("get_run", { run_id: current.run_id, wait_seconds: POLL_WAIT }).then(function () {
      polling = false;
      if (current && current.status === "running") poll();
    }, function (err) { polling = false; view.update(Object.assign({}, current, { progress: "could not follow the run: " + err.message })); });
  }
  function onReview(answer) {
    if (!host.serverTools) return Promise.reject(new Error("this host does not let apps call tools; answer with review_run"));
    var args = { run_id: current.run_id, decision: answer.decision, wait_seconds: POLL_WAIT };
    if (answer.decision === "edit") args.instruction = answer.instruction;
    if (typeof answer.round === "number") args.round = answer.round;
    return callTool("review_run", args);
  }

  var view = window.ThinkeditRun.mount(root, { resolveImage: resolveImage, onReview: onReview });
  window.thinkeditView = view;
  show({ run_id: "", instruction: "", status: "running", rounds: [], progress: "waiting for the tool to start the run…" });

  window.addEventListener("message", function (ev) {
    var m = ev.data;
    if (ev.source !== window.parent || !m || m.jsonrpc !== "2.0") return;
    if (m.method === undefined && m.id != null) {
      var w = waiting[m.id];
      delete waiting[m.id];
      if (w) { if (m.error) w.reject(new Error(m.error.message || "error")); else w.resolve(m.result); }
      return;
    }
    if (m.method === "ui/notifications/tool-input") {
      var args = (m.params && m.params.arguments) || {};
      if (!current || !current.source_image) {
        show({ run_id: args.run_id || "", instruction: args.instruction || "", status: "running", rounds: [],
               progress: args.instruction ? "starting the run…" : "fetching the run…" });
      }
    } else if (m.method === "ui/notifications/tool-result") {
      onResult(m.params);
    } else if (m.method === "ui/notifications/tool-cancelled") {
      show(Object.assign({}, current, { status: "cancelled", progress: "", error: "the tool call was cancelled" }));
    } else if (m.method === "ui/notifications/host-context-changed") {
      theme(m.params);
    } else if (m.method === "ui/resource-teardown") {
      gone = true;
      reply(m.id);
    } else if (m.method === "ping") {
      reply(m.id);
    } else if (m.id != null) {
      post({ jsonrpc: "2.0", id: m.id, error: { code: -32601, message: "unknown method " + m.method } });
    }
  });

  function theme(context) {
    var vars = context && context.styles && context.styles.variables;
    Object.keys(vars || {}).forEach(function (k) { if (vars[k]) document.documentElement.style.setProperty(k, vars[k]); });
  }

  request("ui/initialize", {
    protocolVersion: "2026-01-26",
    appInfo: { name: "thinkedit run viewer", version: "1" },
    appCapabilities: { availableDisplayModes: ["inline"] },
  }).then(function (result) {
    host = (result && result.hostCapabilities) || {};
    theme(result && result.hostContext);
    notify("ui/notifications/initialized");
    if (window.ResizeObserver) {
      new ResizeObserver(function () {
        var el = document.documentElement;
        notify("ui/notifications/size-changed", { width: el.scrollWidth, height: el.scrollHeight });
      }).observe(document.documentElement);
    }
  });
})();
