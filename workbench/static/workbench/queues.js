// The Queues page: its counts are fetched again every 2 s while the page is visible, and
// a moment after a run of one of its steps starts or finishes; the cells change in place.
(function () {
  "use strict";
  const table = document.getElementById("wb-queues");
  if (!table) return;
  const stale = document.getElementById("wb-queues-stale");
  const COUNTS = ["pending", "retrying", "running", "dead"];
  const EVERY = 2000;
  let fetching = false;
  let again = false;
  let soon = null;

  function rowOf(step) {
    return table.querySelector('tr[data-step="' + CSS.escape(step) + '"]');
  }

  function flash(cell) {
    cell.classList.remove("wb-changed");
    void cell.getBoundingClientRect(); // restart the animation
    cell.classList.add("wb-changed");
  }

  function paint(data) {
    let changedDead = false;
    data.rows.forEach(function (counts) {
      const row = rowOf(counts.step);
      if (!row) return;
      COUNTS.forEach(function (name) {
        const cell = row.querySelector('[data-count="' + name + '"]');
        const text = String(counts[name]);
        if (cell.textContent === text) return;
        cell.textContent = text;
        cell.classList.toggle("wb-zero", counts[name] === 0);
        flash(cell);
      });
      row.querySelector('[data-count="oldest"]').textContent = counts.oldest;
      const queue = row.querySelector('[data-count="queue"]');
      const state = counts.paused ? "paused" : "active";
      if (queue.textContent !== state) {
        // Paused or resumed elsewhere: the label follows; the button, on reload.
        queue.textContent = state;
        queue.classList.toggle("wb-status-paused", counts.paused);
        queue.classList.toggle("wb-status-flowing", !counts.paused);
        flash(queue);
      }
      if (String(counts.dead) !== row.dataset.listedDead) changedDead = true;
    });
    if (stale) stale.hidden = !changedDead;
  }

  function refresh() {
    if (fetching) {
      again = true;
      return;
    }
    fetching = true;
    fetch(table.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        return response.ok ? response.json() : Promise.reject(response.status);
      })
      .then(paint)
      .catch(function () {})
      .finally(function () {
        fetching = false;
        if (again) {
          again = false;
          refresh();
        }
      });
  }

  setInterval(function () {
    if (document.visibilityState === "visible") refresh();
  }, EVERY);

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") refresh();
  });

  document.addEventListener("wb:message", function (event) {
    const message = event.detail;
    if (message.kind !== "run" || !rowOf(message.step)) return;
    if (!soon) {
      soon = setTimeout(function () {
        soon = null;
        refresh();
      }, 150);
    }
  });
})();
