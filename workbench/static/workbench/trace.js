// A trace's timeline, and its events and deliveries, are fetched again (a moment after)
// when one of its runs starts or finishes: the page never shows a trace older than it is.
(function () {
  "use strict";
  const timeline = document.getElementById("wb-timeline");
  const tables = document.getElementById("wb-trace-tables");
  if (!timeline) return;
  const orders = new Map([
    [timeline, window.workbench.ordered()],
    [tables, window.workbench.ordered()],
  ]);
  let pending = null;

  function load(part) {
    if (!part) return;
    const order = orders.get(part);
    const ticket = order.ask();
    fetch(part.dataset.url, { credentials: "same-origin" })
      .then(function (response) {
        return response.ok ? response.text() : Promise.reject(response.status);
      })
      .then(function (html) {
        if (!order.fresh(ticket)) return; // an older answer, come back late
        part.innerHTML = html; // rendered (and escaped) by the server's template
      })
      .catch(function () {});
  }

  function refresh() {
    pending = null;
    load(timeline);
    load(tables);
  }

  document.addEventListener("wb:message", function (event) {
    const message = event.detail;
    if (message.kind !== "run" || message.traceId !== timeline.dataset.trace) return;
    if (!pending) pending = setTimeout(refresh, 150);
  });
})();
