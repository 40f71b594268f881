// The Flows page: run counts on each node, updated live; nodes and the edges into them
// light up while their steps run; clicking a node shows its config and last runs.
(function () {
  "use strict";
  const stateScript = document.getElementById("wb-flow-state");
  if (!stateScript) return;
  const wb = window.workbench;
  const state = JSON.parse(stateScript.textContent);
  const graph = document.getElementById("wb-graph");
  const panel = document.getElementById("wb-panel");
  const runsUrl = document.getElementById("wb-runs-url").dataset.url;
  const runStatus = {}; // run id -> last status seen
  state.running.forEach(function (id) {
    runStatus[id] = "running";
  });

  // As workbench/views/flows.py counts: an API call answered with a 4xx is refused.
  function bucket(status) {
    return ["running", "succeeded", "refused"].includes(status) ? status : "failed";
  }

  function node(step) {
    return graph.querySelector('.wb-node[data-node="' + CSS.escape(step) + '"]');
  }

  function paint(step) {
    const element = node(step);
    if (!element) return;
    const counts = state.counts[step];
    element.querySelector(".run").textContent = counts.running;
    element.querySelector(".ok").textContent = counts.succeeded;
    element.querySelector(".refused").textContent = counts.refused;
    element.querySelector(".fail").textContent = counts.failed;
    element.classList.toggle("wb-running", counts.running > 0);
    element.classList.toggle("wb-has-failed", counts.failed > 0);
  }

  function flash(element, className) {
    element.classList.remove(className);
    void element.getBoundingClientRect(); // restart the animation
    element.classList.add(className);
    setTimeout(function () {
      element.classList.remove(className);
    }, 1500);
  }

  Object.keys(state.counts).forEach(paint);

  document.addEventListener("wb:message", function (event) {
    const run = event.detail;
    if (run.kind !== "run" || !state.counts[run.step]) return;
    const before = runStatus[run.id];
    if (before === run.status) return;
    const counts = state.counts[run.step];
    if (before) counts[bucket(before)] -= 1;
    counts[bucket(run.status)] += 1;
    runStatus[run.id] = run.status;
    paint(run.step);
    const element = node(run.step);
    flash(element, "wb-pulse");
    if (run.status === "running" || !before) {
      graph.querySelectorAll('.wb-edge[data-target="' + CSS.escape(run.step) + '"]').forEach(function (edge) {
        flash(edge, "wb-lit");
      });
    }
    if (!panel.hidden && panel.dataset.step === run.step) loadRuns(run.step);
  });

  // The config panel ---------------------------------------------------------------

  function entry(list, term, value) {
    if (value === undefined || value === null || value === "" || (Array.isArray(value) && !value.length)) return;
    list.append(wb.el("dt", { text: term }));
    list.append(wb.el("dd", { text: Array.isArray(value) ? value.join(", ") : String(value) }));
  }

  function showStep(step) {
    const detail = state.steps[step];
    if (!detail) return;
    panel.hidden = false;
    panel.dataset.step = step;
    document.getElementById("wb-panel-name").textContent = detail.name;
    document.getElementById("wb-panel-description").textContent = detail.description;
    const list = document.getElementById("wb-panel-config");
    list.replaceChildren();
    entry(list, "Type", detail.type);
    entry(list, "File", detail.file);
    entry(list, "Endpoint", detail.method ? detail.method + " " + detail.path : "");
    entry(list, "Cron", detail.cron);
    entry(list, "Subscribes", detail.subscribes);
    entry(list, "Emits", detail.emits);
    entry(list, "Virtual subscribes", detail.virtualSubscribes);
    entry(list, "Virtual emits", detail.virtualEmits);
    entry(list, "Flows", detail.flows);
    entry(
      list,
      detail.type === "api" ? "Body schema" : "Input schema",
      (detail.schema || []).map(function (f) {
        return f.name + ": " + f.type + (f.required ? "" : " (optional)");
      })
    );
    if (detail.queue) {
      const q = detail.queue;
      entry(list, "Queue", q.type + ", " + q.maxRetries + " retries, visibility " + q.visibilityTimeout + " s");
      entry(list, "Backoff", "initial " + q.backoff.initial + " s × " + q.backoff.factor + ", max " + q.backoff.max + " s" + (q.backoff.jitter ? ", jitter" : ""));
    }
    graph.querySelectorAll(".wb-node.wb-selected").forEach(function (n) {
      n.classList.remove("wb-selected");
    });
    node(step).classList.add("wb-selected");
    loadRuns(step);
  }

  function loadRuns(step) {
    fetch(runsUrl.replace("STEP_NAME", encodeURIComponent(step)), { credentials: "same-origin" })
      .then(function (response) {
        return response.json();
      })
      .then(function (data) {
        const rows = data.runs.map(function (run) {
          return wb.el("tr", {}, [
            wb.el("td", {}, [wb.el("span", { class: "wb-status wb-status-" + run.status, text: run.status + (run.statusCode ? " " + run.statusCode : "") })]),
            wb.el("td", { text: run.attempt }),
            wb.el("td", { text: wb.time(run.startedAt) }),
            wb.el("td", { text: run.durationMs === null ? "–" : run.durationMs }),
            wb.el("td", {}, [wb.el("a", { href: wb.traceUrl(run.traceId), text: run.traceId.slice(0, 8) })]),
          ]);
        });
        const body = document.getElementById("wb-panel-runs");
        body.replaceChildren.apply(body, rows.length ? rows : [wb.el("tr", {}, [wb.el("td", { colspan: 5, text: "No runs yet." })])]);
      });
  }

  graph.addEventListener("click", function (event) {
    const target = event.target.closest(".wb-node");
    if (target && state.steps[target.dataset.node]) showStep(target.dataset.node);
  });
  graph.addEventListener("keydown", function (event) {
    const target = event.target.closest(".wb-node");
    // Only a step of this flow has a panel: a step of another flow is a link to its flow.
    if (target && state.steps[target.dataset.node] && (event.key === "Enter" || event.key === " ")) {
      event.preventDefault();
      showStep(target.dataset.node);
    }
  });
  panel.querySelector(".wb-close").addEventListener("click", function () {
    panel.hidden = true;
  });
})();
