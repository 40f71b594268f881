// Live tail: log lines from the websocket join the table when they match its filters.
(function () {
  "use strict";
  const table = document.getElementById("wb-logs");
  if (!table || table.dataset.live !== "1") return;
  const body = table.tBodies[0];
  const form = document.getElementById("wb-log-filters");
  const newestFirst = Boolean(form);
  const MAX_ROWS = 500;
  const wb = window.workbench;

  function filters() {
    if (!form) return { trace: table.dataset.trace || "" };
    const data = new FormData(form);
    return {
      trace: (data.get("trace") || "").trim(),
      step: data.get("step") || "",
      level: data.get("level") || "",
      q: (data.get("q") || "").toLowerCase(),
    };
  }

  function matches(line, f) {
    return (
      (!f.trace || line.traceId === f.trace) &&
      (!f.step || line.step === f.step) &&
      (!f.level || line.level === f.level) &&
      (!f.q || line.message.toLowerCase().includes(f.q))
    );
  }

  function row(line) {
    const details = wb.el("details", {}, [
      wb.el("summary", {}, [wb.el("span", { text: line.message }), wb.fields(line.fields)]),
      wb.el("pre", { text: JSON.stringify(line.fields, null, 2) }),
    ]);
    return wb.el("tr", { class: "wb-line wb-level-" + line.level + " wb-new", "data-id": line.id }, [
      wb.el("td", { class: "wb-time", text: wb.time(line.time) }),
      wb.el("td", {}, [wb.el("span", { class: "wb-level", text: line.level })]),
      wb.el("td", { text: line.step }),
      wb.el("td", {}, [
        wb.el("a", { class: "wb-trace", href: wb.traceUrl(line.traceId), text: line.traceId.slice(0, 8) }),
      ]),
      wb.el("td", {}, [details]),
    ]);
  }

  document.addEventListener("wb:message", function (event) {
    const line = event.detail;
    if (line.kind !== "log" || !matches(line, filters())) return;
    if (body.querySelector('tr[data-id="' + line.id + '"]')) return;
    body.querySelectorAll("tr.wb-empty").forEach(function (empty) {
      empty.remove();
    });
    if (newestFirst) body.prepend(row(line));
    else body.append(row(line));
    while (body.rows.length > MAX_ROWS) body.deleteRow(newestFirst ? -1 : 0);
  });
})();
