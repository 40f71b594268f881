// A trace's timeline is fetched again (a moment after) when one of its runs changes.
(function () {
  "use strict";
  const timeline = document.getElementById("wb-timeline");
  if (!timeline) return;
  let pending = null;

  function refresh() {
    pending = null;
    fetch(timeline.dataset.url, { credentials: "same-origin" })
      .then(function (response) {
        return response.ok ? response.text() : Promise.reject(response.status);
      })
      .then(function (html) {
        timeline.innerHTML = html; // rendered (and escaped) by the server's template
      })
      .catch(function () {});
  }

  document.addEventListener("wb:message", function (event) {
    const message = event.detail;
    if (message.kind !== "run" || message.traceId !== timeline.dataset.trace) return;
    if (!pending) pending = setTimeout(refresh, 150);
  });
})();
