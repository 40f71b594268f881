// The Traces page's newest traces are fetched again (a moment after) when a run starts
// or finishes: a new trace appears at the top, and a trace's status follows its runs.
// A search, or an older page, stays as it was loaded.
(function () {
  "use strict";
  const table = document.getElementById("wb-traces");
  if (!table || !table.dataset.url) return;
  const body = table.querySelector("tbody");
  const order = window.workbench.ordered();
  let pending = null;

  function refresh() {
    pending = null;
    const ticket = order.ask();
    fetch(table.dataset.url, { credentials: "same-origin" })
      .then(function (response) {
        return response.ok ? response.text() : Promise.reject(response.status);
      })
      .then(function (html) {
        if (!order.fresh(ticket)) return; // an older answer, come back late
        body.innerHTML = html; // rendered (and escaped) by the server's template
      })
      .catch(function () {});
  }

  document.addEventListener("wb:message", function (event) {
    if (event.detail.kind !== "run") return;
    if (!pending) pending = setTimeout(refresh, 300);
  });
})();
