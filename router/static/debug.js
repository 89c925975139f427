// The router's /debug live view: reads GET /admin/events/stream with fetch() (EventSource cannot send the
// Authorization header) and shows each event with its per-destination payloads, decisions and answers.
(function () {
  "use strict";

  var TOKEN_KEY = "router.debug.token";
  var MAX_ROWS = 500;
  var entries = new Map(); // key -> entry, in arrival order
  var selected = null;
  var pending = false;
  var controller = null;
  var lastStats = 0;
  var $ = function (id) { return document.getElementById(id); };

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") { node.textContent = attrs[k]; } else { node.setAttribute(k, attrs[k]); }
    });
    (children || []).forEach(function (c) { if (c) { node.appendChild(c); } });
    return node;
  }

  function pretty(value) {
    return el("pre", { text: typeof value === "string" ? value : JSON.stringify(value, null, 2) });
  }

  function entry(key) {
    var found = entries.get(key);
    if (!found) {
      found = { key: key, id: 0, at: 0, eventName: "", source: "", status: "", destinations: [],
                event: null, deliveries: {}, rejected: null };
      entries.set(key, found);
      if (entries.size > MAX_ROWS) { entries.delete(entries.keys().next().value); }
    }
    return found;
  }

  function delivery(item, destination) {
    if (!item.deliveries[destination]) {
      item.deliveries[destination] = { outcome: "pending", reason: null, shipments: [] };
    }
    return item.deliveries[destination];
  }

  function take(record) {
    if (record.kind === "event") {
      var item = entry(record.event_id);
      item.id = item.id || record.id; item.at = item.at || record.at;
      item.eventName = record.event_name; item.source = record.source; item.status = record.status;
      item.destinations = record.destinations; item.event = record.event; item.warnings = record.warnings;
      record.destinations.forEach(function (d) { delivery(item, d); });
    } else if (record.kind === "rejected") {
      var bad = entry("rejected-" + record.id);
      bad.id = record.id; bad.at = record.at; bad.source = record.source; bad.status = "rejected";
      bad.eventName = "(rejected)"; bad.rejected = record.paths;
    } else if (record.kind === "shipment") {
      record.items.forEach(function (it) {
        var target = entry(it.event_id);
        target.id = target.id || record.id; target.at = target.at || record.at;
        delivery(target, record.destination).shipments.push({
          at: record.at, status: record.status, answer: record.answer, request: record.request,
          note: record.note, payload: it.payload, decision: it.decision, reason: it.reason
        });
      });
    } else if (record.kind === "settled") {
      record.outcomes.forEach(function (o) {
        var done = entry(o.event_id);
        done.id = done.id || record.id; done.at = done.at || record.at;
        done.eventName = done.eventName || o.event_name;
        var d = delivery(done, record.destination);
        d.outcome = o.outcome; d.reason = o.reason; d.attempt = o.attempt;
      });
      refreshStats();
    }
    schedule();
  }

  function refreshStats() {
    var token = sessionStorage.getItem(TOKEN_KEY);
    if (token && Date.now() - lastStats > 2000) { lastStats = Date.now(); stats(token); }
  }

  function schedule() {
    if (pending) { return; }
    pending = true;
    window.requestAnimationFrame(function () { pending = false; render(); });
  }

  function visible(item) {
    var dest = $("f-destination").value, name = $("f-event").value, outcome = $("f-outcome").value;
    if (name && item.eventName !== name) { return false; }
    if (item.rejected) { return !dest && (!outcome || outcome === "rejected"); }
    var ds = Object.keys(item.deliveries).filter(function (d) { return !dest || d === dest; });
    if (dest && ds.length === 0) { return false; }
    return !outcome || ds.some(function (d) { return item.deliveries[d].outcome === outcome; });
  }

  function options(select, values) {
    var current = select.value;
    var known = Array.prototype.map.call(select.options, function (o) { return o.value; });
    values.forEach(function (v) { if (v && known.indexOf(v) < 0) { select.appendChild(el("option", { value: v, text: v })); } });
    select.value = current;
  }

  function render() {
    var names = new Set(), dests = new Set();
    var rows = $("rows");
    rows.textContent = "";
    var items = Array.from(entries.values()).reverse();
    items.forEach(function (item) {
      names.add(item.eventName);
      Object.keys(item.deliveries).forEach(function (d) { dests.add(d); });
      if (!visible(item)) { return; }
      var badges = el("td", {}, item.rejected ? [el("span", { "class": "outcome rejected", text: "rejected" })] :
        Object.keys(item.deliveries).map(function (d) {
          var o = item.deliveries[d].outcome;
          return el("span", { "class": "outcome " + o, text: d + ": " + o, "data-destination": d, "data-outcome": o });
        }));
      var row = el("tr", { "class": "event" + (selected === item.key ? " selected" : ""), "data-key": item.key }, [
        el("td", { text: item.at ? new Date(item.at * 1000).toLocaleTimeString() : "" }),
        el("td", { text: item.eventName + (item.status === "duplicate" ? " (duplicate)" : "") }),
        el("td", { text: item.source }), badges
      ]);
      row.addEventListener("click", function () { selected = item.key; render(); });
      rows.appendChild(row);
    });
    options($("f-event"), Array.from(names).sort());
    options($("f-destination"), Array.from(dests).sort());
    if (selected && entries.has(selected)) { detail(entries.get(selected)); }
  }

  function detail(item) {
    var pane = $("detail");
    pane.textContent = "";
    pane.appendChild(el("h2", { text: (item.eventName || "event") + " " + (item.rejected ? "" : item.key) }));
    if (item.rejected) {
      pane.appendChild(el("p", { text: "Rejected at ingest; problem paths:" }));
      pane.appendChild(pretty(item.rejected));
      return;
    }
    var columns = el("div", { "class": "columns" });
    columns.appendChild(el("div", { "class": "canonical" }, [
      el("h3", { text: "Canonical event (" + (item.status || "seen in delivery only") + ")" }),
      item.event ? pretty(item.event) : el("p", { "class": "muted", text: "ingested before this page opened" })
    ]));
    Object.keys(item.deliveries).sort().forEach(function (d) {
      var info = item.deliveries[d];
      var col = el("div", { "class": "payload", "data-destination": d }, [
        el("h3", { text: d }),
        el("span", { "class": "outcome " + info.outcome, text: info.outcome + (info.reason ? ": " + info.reason : "") })
      ]);
      info.shipments.forEach(function (s, n) {
        col.appendChild(el("h3", { text: "Attempt " + (n + 1) + ": HTTP " + (s.status === null ? "-" : s.status) +
          " \u2192 " + s.decision + (s.reason ? " (" + s.reason + ")" : "") + (s.note ? " [" + s.note + "]" : "") }));
        col.appendChild(el("div", { "class": "muted", text: "Mapped payload" }));
        col.appendChild(pretty(s.payload));
        col.appendChild(el("div", { "class": "muted", text: "Platform answer (redacted)" }));
        col.appendChild(pretty(s.answer === null ? "(no answer)" : s.answer));
        var more = el("details", {}, [el("summary", { text: "Request (masked)" }), pretty(s.request)]);
        col.appendChild(more);
      });
      if (!info.shipments.length) { col.appendChild(el("p", { "class": "muted", text: "not sent yet" })); }
      columns.appendChild(col);
    });
    pane.appendChild(columns);
  }

  function state(text, live) {
    var s = $("state"); s.textContent = text; s.className = live ? "live" : "off";
  }

  function showLogin(message) {
    if (controller) { controller.abort(); controller = null; }
    document.querySelector("main").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = message || "";
    state("not connected", false);
  }

  function parse(block) {
    var data = block.split("\n").filter(function (l) { return l.indexOf("data:") === 0; })
      .map(function (l) { return l.slice(5).replace(/^ /, ""); }).join("\n");
    if (data) { take(JSON.parse(data)); }
  }

  function connect(token) {
    if (controller) { controller.abort(); }
    controller = new AbortController();
    var mine = controller;
    entries.clear(); schedule();
    state("connecting...", false);
    fetch("/admin/events/stream", { headers: { Authorization: "Bearer " + token }, signal: mine.signal, cache: "no-store" })
      .then(function (response) {
        if (response.status === 401 || response.status === 404) {
          sessionStorage.removeItem(TOKEN_KEY);
          showLogin(response.status === 401 ? "The token was refused." : "The admin endpoints are off.");
          return null;
        }
        if (!response.ok || !response.body) { throw new Error("HTTP " + response.status); }
        document.querySelector("main").hidden = false;
        $("login").hidden = true;
        state("live", true);
        stats(token);
        var reader = response.body.getReader(), decoder = new TextDecoder(), buffer = "";
        function pump() {
          return reader.read().then(function (chunk) {
            if (chunk.done) { throw new Error("stream ended"); }
            buffer += decoder.decode(chunk.value, { stream: true }).replace(/\r\n/g, "\n");
            var cut;
            while ((cut = buffer.indexOf("\n\n")) >= 0) { parse(buffer.slice(0, cut)); buffer = buffer.slice(cut + 2); }
            return pump();
          });
        }
        return pump();
      })
      .catch(function (err) {
        if (mine.signal.aborted) { return; }
        state("reconnecting (" + err.message + ")", false);
        window.setTimeout(function () { if (controller === mine) { connect(token); } }, 2000);
      });
  }

  function cell(text) { return el("td", { text: text }); }

  function overview(destinations) {
    // GET /admin/stats shape: {destinations: {id: {window: {counts..., reasons, match}}}}
    var outcomes = [];
    var rows = [];
    Object.keys(destinations).forEach(function (d) {
      Object.keys(destinations[d] || {}).forEach(function (w) {
        var data = destinations[d][w] || {};
        Object.keys(data).forEach(function (k) {
          if (typeof data[k] === "number" && outcomes.indexOf(k) < 0) { outcomes.push(k); }
        });
        rows.push([d, w, data]);
      });
    });
    var head = el("tr", {}, ["Destination", "Window"].concat(outcomes, ["Match score", "Identifier shares (%)", "Malformed", "Top reasons"])
      .map(function (h) { return el("th", { text: h }); }));
    var body = rows.map(function (r) {
      var data = r[2], m = data.match || {};
      var shares = Object.keys(m.shares || {}).map(function (k) { return k + " " + m.shares[k]; }).join(", ");
      var malformed = Object.keys(m.malformed || {}).map(function (k) { return k + " " + m.malformed[k]; }).join(", ");
      var reasons = [];
      Object.keys(data.reasons || {}).forEach(function (o) {
        (data.reasons[o] || []).forEach(function (pair) { reasons.push(o + ": " + pair[1] + " \u00d7 " + pair[0]); });
      });
      return el("tr", { "data-destination": r[0] }, [cell(r[0]), cell(r[1])]
        .concat(outcomes.map(function (o) { return cell(String(data[o])); }))
        .concat([cell(m.score === undefined ? "" : m.score + "/10 over " + m.events), cell(shares), cell(malformed),
                 cell(reasons.join("; "))]));
    });
    return el("table", {}, [el("thead", {}, [head]), el("tbody", {}, body)]);
  }

  function stats(token) {
    fetch("/admin/stats", { headers: { Authorization: "Bearer " + token }, cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        var panel = $("stats");
        if (!data || typeof data !== "object") { panel.hidden = true; return; }
        var body = $("stats-body");
        body.textContent = "";
        if (data.destinations && typeof data.destinations === "object") {
          body.appendChild(overview(data.destinations));
        } else {
          body.appendChild(pretty(data));
        }
        panel.hidden = false;
      })
      .catch(function () { $("stats").hidden = true; });
  }

  $("login").addEventListener("submit", function (e) {
    e.preventDefault();
    var token = $("token").value.trim();
    if (!token) { return; }
    sessionStorage.setItem(TOKEN_KEY, token);
    $("token").value = "";
    connect(token);
  });
  $("logout").addEventListener("click", function () { sessionStorage.removeItem(TOKEN_KEY); showLogin(""); });
  $("clear").addEventListener("click", function () { entries.clear(); selected = null; $("detail").textContent = ""; render(); });
  ["f-destination", "f-event", "f-outcome"].forEach(function (id) { $(id).addEventListener("change", render); });
  window.setInterval(function () {
    var token = sessionStorage.getItem(TOKEN_KEY);
    if (token && controller) { stats(token); }
  }, 10000);

  var saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) { connect(saved); } else { showLogin(""); }
})();
