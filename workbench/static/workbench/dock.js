// The Flows page's panel under the graph: Tracing, State and Logs tabs, switched in
// the page (the tab kept in the URL's hash), its height dragged and kept in
// localStorage. Every text goes in as text; only the server's timeline fragment,
// rendered and escaped by its template, goes in as HTML.
(function () {
  "use strict";
  const dock = document.getElementById("wb-dock");
  const stateScript = document.getElementById("wb-flow-state");
  if (!dock || !stateScript) return;
  const wb = window.workbench;
  const flowState = JSON.parse(stateScript.textContent);
  const flowSteps = new Set(Object.keys(flowState.steps));
  const screen = document.getElementById("wb-screen");
  const tabs = Array.from(dock.querySelectorAll("[role=tab]"));
  const HEIGHT_KEY = "workbench.dock.height";
  const MAX_LOGS = 500;

  function getJson(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(function (response) {
      return response.ok ? response.json() : Promise.reject(response.status);
    });
  }

  function debounced(fn, ms) {
    let pending = null;
    return function () {
      if (!pending)
        pending = setTimeout(function () {
          pending = null;
          fn();
        }, ms);
    };
  }

  // The screen: the graph and the panel fill the window below the page's header. -----

  function fit() {
    const top = screen.getBoundingClientRect().top + window.scrollY;
    screen.style.height = Math.max(520, window.innerHeight - top - 12) + "px";
  }

  function setHeight(px) {
    const max = screen.clientHeight - 140;
    const height = Math.round(Math.max(120, Math.min(px, max)));
    dock.style.height = height + "px";
    return height;
  }

  fit();
  window.addEventListener("resize", fit);
  setHeight(Number(localStorage.getItem(HEIGHT_KEY)) || 260);

  const handle = document.getElementById("wb-dock-handle");
  handle.addEventListener("pointerdown", function (event) {
    event.preventDefault();
    const startY = event.clientY;
    const startHeight = dock.offsetHeight;
    handle.setPointerCapture(event.pointerId);
    dock.classList.add("wb-resizing");
    function move(moved) {
      setHeight(startHeight - (moved.clientY - startY));
    }
    function up() {
      handle.removeEventListener("pointermove", move);
      handle.removeEventListener("pointerup", up);
      dock.classList.remove("wb-resizing");
      localStorage.setItem(HEIGHT_KEY, dock.offsetHeight);
    }
    handle.addEventListener("pointermove", move);
    handle.addEventListener("pointerup", up);
  });
  handle.addEventListener("keydown", function (event) {
    const step = { ArrowUp: 30, ArrowDown: -30 }[event.key];
    if (!step) return;
    event.preventDefault();
    localStorage.setItem(HEIGHT_KEY, setHeight(dock.offsetHeight + step));
  });

  // Tabs: shown in the page, the chosen one in the URL's hash. ------------------------

  const loaders = {};

  function show(name) {
    const tab = tabs.find(function (t) {
      return t.dataset.tab === name;
    }) || tabs[0];
    tabs.forEach(function (t) {
      const on = t === tab;
      t.setAttribute("aria-selected", on ? "true" : "false");
      t.tabIndex = on ? 0 : -1;
      document.getElementById(t.getAttribute("aria-controls")).hidden = !on;
    });
    history.replaceState(null, "", location.pathname + location.search + "#" + tab.dataset.tab);
    if (loaders[tab.dataset.tab]) loaders[tab.dataset.tab]();
  }

  tabs.forEach(function (tab, i) {
    tab.addEventListener("click", function () {
      show(tab.dataset.tab);
    });
    tab.addEventListener("keydown", function (event) {
      const next = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      if (!next) return;
      const other = tabs[(i + next + tabs.length) % tabs.length];
      other.focus();
      show(other.dataset.tab);
    });
  });

  // Logs: the flow's lines, newest at the top, filtered by step and text. -------------

  const logBody = document.getElementById("wb-flow-logs");
  if (logBody) {
    const stepSelect = document.getElementById("wb-log-step");
    const filter = document.getElementById("wb-log-filter");

    const logRow = function (line) {
      const fields = wb.fields(line.fields);
      const row = wb.el("tr", { class: "wb-line wb-level-" + line.level, "data-id": line.id, "data-step": line.step }, [
        wb.el("td", { class: "wb-time", text: wb.time(line.time) }),
        wb.el("td", {}, [wb.el("span", { class: "wb-level", text: line.level })]),
        wb.el("td", { class: "wb-log-step", text: line.step }),
        wb.el("td", {}, [wb.el("a", { class: "wb-trace", href: wb.traceUrl(line.traceId), text: line.traceId.slice(0, 8) })]),
        wb.el("td", { class: "wb-log-message" }, [wb.el("span", { text: line.message }), fields]),
      ]);
      row.dataset.text = (line.message + " " + line.traceId + " " + fields.textContent).toLowerCase();
      return row;
    };

    const visible = function (row) {
      const step = stepSelect.value;
      const text = filter.value.trim().toLowerCase();
      const stepOk = step === "*" || (step ? row.dataset.step === step : flowSteps.has(row.dataset.step));
      return stepOk && (!text || row.dataset.text.includes(text));
    };

    const refilter = function () {
      Array.from(logBody.rows).forEach(function (row) {
        if (!row.classList.contains("wb-empty")) row.hidden = !visible(row);
      });
      const empty = logBody.querySelector(".wb-empty");
      const any = Array.from(logBody.rows).some(function (row) {
        return !row.hidden && !row.classList.contains("wb-empty");
      });
      empty.hidden = any;
    };

    logBody.append(wb.el("tr", { class: "wb-empty" }, [wb.el("td", { colspan: 5, text: "No log lines yet." })]));
    flowState.logs.forEach(function (line) {
      logBody.append(logRow(line));
    });
    refilter();
    stepSelect.addEventListener("change", refilter);
    filter.addEventListener("input", refilter);

    document.addEventListener("wb:message", function (event) {
      const line = event.detail;
      if (line.kind !== "log" || logBody.querySelector('tr[data-id="' + line.id + '"]')) return;
      const row = logRow(line);
      row.classList.add("wb-new");
      row.hidden = !visible(row);
      // Newest (highest id) at the top, though lines from the web server and the
      // workers may arrive out of order.
      const older = Array.from(logBody.querySelectorAll("tr[data-id]")).find(function (other) {
        return Number(other.dataset.id) < line.id;
      });
      if (older) older.before(row);
      else logBody.append(row);
      while (logBody.rows.length > MAX_LOGS + 1) logBody.deleteRow(-1);
      if (!row.hidden) logBody.querySelector(".wb-empty").hidden = true;
    });
  }

  // Tracing: the flow's traces beside the picked one's timeline. ---------------------

  const tracing = document.getElementById("wb-dock-tracing");
  if (tracing) {
    const list = document.getElementById("wb-flow-traces");
    const search = document.getElementById("wb-trace-search");
    const timeline = document.getElementById("wb-flow-timeline");
    let picked = null;
    let loaded = false;
    const tracesOrder = wb.ordered();
    const timelineOrder = wb.ordered();

    const fragment = function (url, traceId) {
      return fetch(url.replace("TRACE_ID", encodeURIComponent(traceId)), { credentials: "same-origin" }).then(function (response) {
        return response.ok ? response.text() : Promise.reject(response.status);
      });
    };

    // The picked trace: its timeline, then its events and deliveries, fetched again
    // as its runs change.
    const loadTimeline = function () {
      if (!picked) return;
      const traceId = picked;
      const ticket = timelineOrder.ask();
      Promise.all([fragment(tracing.dataset.timelineUrl, traceId), fragment(tracing.dataset.tablesUrl, traceId)])
        .then(function ([bars, tables]) {
          if (traceId !== picked || !timelineOrder.fresh(ticket)) return;
          const head = wb.el("div", { class: "wb-timeline-head" }, [
            wb.el("span", { text: "Trace " }),
            wb.el("a", { href: wb.traceUrl(traceId), text: traceId }),
          ]);
          const body = wb.el("div", { class: "wb-timeline-body" });
          body.innerHTML = bars; // rendered (and escaped) by the server's templates
          const more = wb.el("div", { class: "wb-trace-tables", id: "wb-flow-trace-tables" });
          more.innerHTML = tables;
          timeline.replaceChildren(head, body, more);
          timeline.dataset.trace = traceId;
        })
        .catch(function () {});
    };

    const pick = function (traceId) {
      picked = traceId;
      list.querySelectorAll("li").forEach(function (item) {
        item.classList.toggle("wb-picked", item.dataset.trace === traceId);
        item.querySelector("button").setAttribute("aria-pressed", item.dataset.trace === traceId ? "true" : "false");
      });
      loadTimeline();
    };

    const loadTraces = function () {
      loaded = true;
      const url = tracing.dataset.url + "&q=" + encodeURIComponent(search.value.trim());
      const ticket = tracesOrder.ask();
      getJson(url)
        .then(function (data) {
          if (!tracesOrder.fresh(ticket)) return;
          const items = data.traces.map(function (trace) {
            const button = wb.el("button", { type: "button", "aria-pressed": "false" }, [
              wb.el("span", { class: "wb-pick-main" }, [
                wb.el("span", { class: "wb-pick-title", text: trace.entryStep || "(emit)" }),
                wb.el("span", { class: "wb-status wb-status-" + trace.status, text: trace.status + (trace.statusCode ? " " + trace.statusCode : "") }),
              ]),
              wb.el("span", { class: "wb-pick-sub" }, [
                wb.el("code", { title: trace.traceId, text: trace.traceId.slice(0, 12) }),
                wb.el("span", { text: wb.time(trace.startedAt).slice(0, 8) + " · " + trace.runs + (trace.runs === 1 ? " run" : " runs") + (trace.durationMs === null ? "" : " · " + trace.durationMs + " ms") }),
              ]),
            ]);
            button.addEventListener("click", function () {
              pick(trace.traceId);
            });
            return wb.el("li", { "data-trace": trace.traceId, class: trace.traceId === picked ? "wb-picked" : "" }, [button]);
          });
          if (!items.length) items.push(wb.el("li", { class: "wb-quiet wb-pick-empty", text: search.value.trim() ? "No trace matches." : "No traces yet." }));
          list.replaceChildren.apply(list, items);
          if (picked) pick(picked);
        })
        .catch(function () {});
    };

    const refresh = debounced(loadTraces, 300);
    const refreshTimeline = debounced(loadTimeline, 150);
    loaders.tracing = function () {
      if (!loaded) loadTraces();
    };
    let typing = null;
    search.addEventListener("input", function () {
      clearTimeout(typing);
      typing = setTimeout(loadTraces, 250);
    });
    document.addEventListener("wb:message", function (event) {
      const run = event.detail;
      if (run.kind !== "run") return;
      if (loaded && !search.value.trim()) refresh();
      if (run.traceId === picked) refreshTimeline();
    });
  }

  // State: groups, their keys, a value as pretty JSON, edited as JSON. ----------------

  const statePanel = document.getElementById("wb-dock-state");
  if (statePanel) {
    const groups = document.getElementById("wb-state-groups");
    const keys = document.getElementById("wb-state-keys");
    const valueBox = document.getElementById("wb-state-value");
    const mayEdit = statePanel.dataset.mayEdit === "1";
    let group = "";
    let entries = [];
    let shown = null; // the key whose value is shown (not while it is being edited)
    const groupOrder = wb.ordered();

    const picker = function (listEl, attribute, value, children, onPick) {
      const button = wb.el("button", { type: "button" }, children);
      button.addEventListener("click", onPick);
      const item = wb.el("li", {}, [button]);
      item.dataset[attribute] = value;
      return item;
    };

    const mark = function (listEl, attribute, value) {
      listEl.querySelectorAll("li").forEach(function (item) {
        item.classList.toggle("wb-picked", item.dataset[attribute] === value);
      });
    };

    const showValue = function (entry) {
      shown = entry.key;
      mark(keys, "key", entry.key);
      const pretty = JSON.stringify(entry.value, null, 2);
      const title = wb.el("div", { class: "wb-timeline-head" }, [
        wb.el("code", { text: group + " / " + entry.key }),
        wb.el("span", { class: "wb-quiet", text: "updated " + wb.time(entry.updatedAt) }),
      ]);
      const view = wb.el("pre", { class: "wb-json", id: "wb-state-json", text: pretty });
      valueBox.replaceChildren(title, view);
      if (!mayEdit) return;
      const edit = wb.el("button", { type: "button", class: "button", id: "wb-state-edit", text: "Edit" });
      valueBox.append(edit);
      edit.addEventListener("click", function () {
        shown = null; // an edit in progress is not replaced by what the server says
        const text = wb.el("textarea", { id: "wb-state-text", rows: 10, spellcheck: "false", "aria-label": "Value as JSON" });
        text.value = pretty;
        const save = wb.el("button", { type: "submit", class: "button default", text: "Save" });
        const cancel = wb.el("button", { type: "button", class: "button", text: "Cancel" });
        const error = wb.el("p", { class: "wb-error", id: "wb-state-error", role: "alert" });
        const form = wb.el("form", { class: "wb-state-form" }, [text, wb.el("div", { class: "wb-state-buttons" }, [save, cancel]), error]);
        valueBox.replaceChildren(title, form);
        text.focus();
        cancel.addEventListener("click", function () {
          showValue(entry);
        });
        form.addEventListener("submit", function (event) {
          event.preventDefault();
          const body = new URLSearchParams({ group: group, key: entry.key, value: text.value });
          fetch(statePanel.dataset.editUrl, {
            method: "POST",
            credentials: "same-origin",
            headers: { Accept: "application/json", "X-CSRFToken": statePanel.querySelector("[name=csrfmiddlewaretoken]").value },
            body: body,
          })
            .then(function (response) {
              return response.json().then(function (data) {
                return { ok: response.ok, data: data };
              });
            })
            .then(function (answer) {
              if (!answer.ok) {
                error.textContent = answer.data.error || "Not saved.";
                return;
              }
              entry.value = answer.data.value;
              entry.updatedAt = answer.data.updatedAt;
              groupOrder.supersede(); // an answer read before this save is older
              showValue(entry);
              valueBox.querySelector("pre").classList.add("wb-changed");
            })
            .catch(function () {
              error.textContent = "Not saved: no answer from the server.";
            });
        });
      });
    };

    // A group's keys; ``again``: the same group fetched again (live), keeping the key
    // picked, and its value shown as it is now (flashed when it changed). A group
    // picked while a live fetch is on its way, or a value just saved, is not undone by
    // an answer read before it.
    const showGroup = function (name, again) {
      group = name;
      mark(groups, "group", name);
      if (!again) {
        shown = null;
        keys.replaceChildren();
        valueBox.replaceChildren(wb.el("p", { class: "wb-quiet wb-placeholder", text: "Pick a key of " + name + "." }));
      }
      const ticket = groupOrder.ask();
      getJson(statePanel.dataset.url + "?group=" + encodeURIComponent(name)).then(function (data) {
        if (group !== name || !groupOrder.fresh(ticket)) return;
        entries = data.entries;
        const items = entries.map(function (entry) {
          return picker(keys, "key", entry.key, [wb.el("span", { class: "wb-pick-title", title: entry.key, text: entry.key })], function () {
            showValue(entry);
          });
        });
        keys.replaceChildren.apply(keys, items);
        if (shown === null) return;
        const entry = entries.find(function (e) {
          return e.key === shown;
        });
        const before = document.getElementById("wb-state-json");
        if (entry) {
          const changed = !before || before.textContent !== JSON.stringify(entry.value, null, 2);
          showValue(entry);
          if (changed) valueBox.querySelector("pre").classList.add("wb-changed");
        }
      });
    };

    let stateLoaded = false;
    const loadGroups = function () {
      getJson(statePanel.dataset.url).then(function (data) {
        const items = data.groups.map(function (g) {
          return picker(groups, "group", g.group, [
            wb.el("span", { class: "wb-pick-title", title: g.group, text: g.group }),
            wb.el("span", { class: "wb-quiet", text: g.count }),
          ], function () {
            showGroup(g.group);
          });
        });
        if (!items.length) items.push(wb.el("li", { class: "wb-quiet wb-pick-empty", text: "No state yet." }));
        groups.replaceChildren.apply(groups, items);
        if (group) mark(groups, "group", group);
      });
    };
    loaders.state = function () {
      if (stateLoaded) return;
      stateLoaded = true;
      loadGroups();
    };
    // Handlers write state as they run: when a run finishes, the groups, the open
    // group's keys and the value shown are fetched again.
    const refreshState = debounced(function () {
      loadGroups();
      if (group) showGroup(group, true);
    }, 400);
    document.addEventListener("wb:message", function (event) {
      const run = event.detail;
      if (stateLoaded && run.kind === "run" && run.finishedAt) refreshState();
    });
  }

  show(location.hash.slice(1));
})();
