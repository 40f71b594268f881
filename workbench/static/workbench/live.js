// The workbench's live connection: one websocket per page; each message (a log line or
// a run status change) is dispatched on the document as a "wb:message" event.
(function () {
  "use strict";
  const indicator = document.getElementById("wb-live");
  const root = document.querySelector(".wb");
  let delay = 500;

  function show(state, text) {
    if (!indicator) return;
    indicator.dataset.state = state;
    indicator.textContent = text;
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(scheme + "://" + location.host + "/workbench/ws/");
    socket.onopen = function () {
      delay = 500;
      show("on", "live");
    };
    socket.onmessage = function (event) {
      const message = JSON.parse(event.data);
      document.dispatchEvent(new CustomEvent("wb:message", { detail: message }));
    };
    socket.onclose = function (event) {
      if (event.code === 4003) {
        show("off", "closed: not allowed");
        return;
      }
      show("off", "reconnecting…");
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 10000);
    };
  }

  // Small DOM helpers the page scripts share; text always goes in as text, never HTML.
  window.workbench = {
    traceUrl: function (traceId) {
      return root.dataset.traceUrl.replace("TRACE_ID", encodeURIComponent(traceId));
    },
    el: function (tag, attributes, children) {
      const node = document.createElement(tag);
      Object.entries(attributes || {}).forEach(function ([name, value]) {
        if (name === "text") node.textContent = value;
        else node.setAttribute(name, value);
      });
      (children || []).forEach(function (child) {
        node.append(child);
      });
      return node;
    },
    // A log line's fields inline, as the console prints them: key=value ...
    fields: function (fields) {
      const shown = window.workbench.el("span", { class: "wb-fields" });
      Object.entries(fields || {}).forEach(function ([key, value]) {
        shown.append(
          window.workbench.el("span", { class: "wb-field" }, [
            window.workbench.el("span", { class: "wb-field-key", text: key + "=" }),
            window.workbench.el("span", { text: typeof value === "string" ? value : JSON.stringify(value) }),
          ])
        );
      });
      return shown;
    },
    time: function (iso) {
      return iso ? new Date(iso).toISOString().slice(11, 23) : "";
    },
    // Answers to a fetch made again and again (picked, then live) can come back out of
    // order. ``ordered()`` numbers the requests; an answer older than one already drawn
    // is dropped. A newer request still on its way does not hold an answer back, so a
    // steady stream of live refreshes cannot starve the view. ``supersede()``: what is
    // drawn now (a value just saved) is newer than any answer on its way.
    ordered: function () {
      let asked = 0;
      let drawn = 0;
      return {
        ask: function () {
          asked += 1;
          return asked;
        },
        fresh: function (ticket) {
          if (ticket < drawn) return false;
          drawn = ticket;
          return true;
        },
        supersede: function () {
          asked += 1;
          drawn = asked;
        },
      };
    },
  };

  connect();
})();
