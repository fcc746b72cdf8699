// Garrison dashboard: keeps a run page's order states live over the
// server-sent events of /dashboard/runs/{id}/events. Pages work without it.
"use strict";

(function () {
  var run = document.getElementById("run");
  if (!run || !window.EventSource) {
    return;
  }
  var live = document.getElementById("live");
  function setLive(state, text) {
    if (live) {
      live.setAttribute("data-state", state);
      live.textContent = text;
    }
  }

  function setText(root, field, value) {
    var el = root.querySelector('[data-field="' + field + '"]');
    if (el && value !== null && value !== undefined) {
      el.textContent = String(value);
    }
  }

  function applyOrder(change) {
    var targets = document.querySelectorAll('[data-order-id="' + CSS.escape(change.order_id) + '"]');
    if (targets.length === 0) {
      // An order planned after the page was read: show the new plan.
      window.location.reload();
      return;
    }
    targets.forEach(function (el) {
      el.setAttribute("data-status", change.status);
      setText(el, "status", change.status);
      setText(el, "attempt", change.attempt);
      setText(el, "integration", change.integration || "");
    });
  }

  function applyRun(change) {
    var status = document.getElementById("run-status");
    if (status) {
      status.setAttribute("data-status", change.status);
      status.textContent = change.status;
    }
    var reply = document.getElementById("reply");
    var summary = document.getElementById("run-summary");
    if (change.summary && reply && summary) {
      summary.textContent = change.summary;
      reply.hidden = false;
    }
  }

  var source = new EventSource(run.getAttribute("data-stream"));
  source.onopen = function () {
    setLive("open", "live");
  };
  source.onerror = function () {
    // EventSource reconnects on its own, resuming after the last id.
    setLive("retrying", "reconnecting…");
  };
  source.onmessage = function (msg) {
    var change;
    try {
      change = JSON.parse(msg.data);
    } catch (e) {
      return;
    }
    if (change.kind === "order") {
      applyOrder(change);
    } else if (change.kind === "run") {
      applyRun(change);
    }
    run.setAttribute("data-last-seq", msg.lastEventId);
  };
})();
