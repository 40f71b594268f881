// The Flows page: run counts on each node, updated live; nodes and the edges into them
// light up while their steps run; a cron node's next run moves on as the time passes;
// clicking a node shows its config and last runs in a panel over the page's right (or
// left) side, the graph keeping its size.
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
    const shown = element && element.querySelector(".wb-counts");
    if (!shown) return;
    const counts = state.counts[step];
    [
      ["run", counts.running],
      ["ok", counts.succeeded],
      ["refused", counts.refused],
      ["fail", counts.failed],
    ].forEach(function ([name, n]) {
      const count = shown.querySelector("." + name);
      count.textContent = n;
      count.parentElement.classList.toggle("wb-zero", !n);
    });
    shown.classList.toggle("wb-idle", !(counts.running + counts.succeeded + counts.refused + counts.failed));
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

  // A cron node's next run ----------------------------------------------------------

  function runsOf(step) {
    return fetch(runsUrl.replace("STEP_NAME", encodeURIComponent(step)), { credentials: "same-origin" }).then(function (response) {
      return response.json();
    });
  }

  function showNext(step) {
    const shown = node(step) && node(step).querySelector(".wb-next");
    const next = state.nextRuns[step][0];
    if (!shown || !next) return;
    const time = shown.querySelector("time");
    time.dateTime = next.at;
    time.textContent = next.label;
    shown.title = "Next run: " + next.full;
    if (!panel.hidden && panel.dataset.step === step) showStep(step, false);
  }

  function tick() {
    Object.keys(state.nextRuns).forEach(function (step) {
      const upcoming = state.nextRuns[step];
      const before = upcoming.length;
      while (upcoming.length && Date.parse(upcoming[0].at) <= Date.now()) upcoming.shift();
      if (upcoming.length === before) return;
      if (upcoming.length) {
        showNext(step);
      } else {
        upcoming.push({ at: "9999-12-31T00:00:00Z" }); // asked once, until the answer comes
        runsOf(step).then(function (data) {
          state.nextRuns[step] = data.nextRuns;
          showNext(step);
        });
      }
    });
  }

  if (Object.keys(state.nextRuns).length) setInterval(tick, 500);

  // The config panel ---------------------------------------------------------------

  function entry(list, term, value) {
    if (value === undefined || value === null || value === "" || (Array.isArray(value) && !value.length)) return;
    list.append(wb.el("dt", { text: term }));
    // A long path may wrap after each slash.
    const parts = (Array.isArray(value) ? value.join(", ") : String(value)).split(/(?<=\/)/);
    const dd = wb.el("dd");
    parts.forEach(function (part, i) {
      if (i) dd.append(wb.el("wbr"));
      dd.append(part);
    });
    list.append(dd);
  }

  function showStep(step, fetchRuns) {
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
    entry(list, "Join", detail.join);
    entry(list, "Flow control", detail.flowControl);
    entry(list, "Next run", (state.nextRuns[step] || []).length ? state.nextRuns[step][0].full : "");
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
    const runs = detail.type !== "noop";
    document.getElementById("wb-panel-runs-section").hidden = !runs;
    document.getElementById("wb-panel-noop").hidden = runs;
    dock(node(step));
    if (runs && fetchRuns !== false) loadRuns(step);
  }

  // The panel lies over the graph without moving it: at the right, or at the left when
  // it would hide the node it shows.
  function dock(element) {
    const card = element.getBoundingClientRect();
    function hidden() {
      const box = panel.getBoundingClientRect();
      return Math.max(0, Math.min(card.right, box.right) - Math.max(card.left, box.left));
    }
    panel.classList.remove("wb-left");
    const right = hidden();
    if (!right) return;
    panel.classList.add("wb-left");
    if (hidden() >= right) panel.classList.remove("wb-left");
  }

  function closePanel() {
    if (panel.hidden) return;
    panel.hidden = true;
    const selected = graph.querySelector(".wb-node.wb-selected");
    if (selected) {
      selected.classList.remove("wb-selected");
      selected.focus();
    }
  }

  function loadRuns(step) {
    runsOf(step)
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

  graph.closest(".wb-canvas").addEventListener("click", function (event) {
    const target = event.target.closest(".wb-node");
    if (target && state.steps[target.dataset.node]) showStep(target.dataset.node);
    else if (!target) closePanel(); // a click off the cards
  });
  graph.addEventListener("keydown", function (event) {
    const target = event.target.closest(".wb-node");
    // Only a step of this flow has a panel: a step of another flow is a link to its flow.
    if (target && state.steps[target.dataset.node] && (event.key === "Enter" || event.key === " ")) {
      event.preventDefault();
      showStep(target.dataset.node);
    }
  });
  panel.querySelector(".wb-close").addEventListener("click", closePanel);
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") closePanel();
  });
})();
