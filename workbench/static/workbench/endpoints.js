// The Endpoints page: each form sends its request and shows the response and its trace.
(function () {
  "use strict";
  const wb = window.workbench;

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function url(section, form) {
    return section.dataset.path.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, function (_, name) {
      return encodeURIComponent(form.querySelector('[data-path-param="' + name + '"]').value);
    });
  }

  function show(section, status, text, traceId) {
    const box = section.querySelector(".wb-response");
    box.hidden = false;
    box.querySelector(".wb-response-status").textContent = status;
    box.querySelector(".wb-response-body").textContent = text;
    const trace = box.querySelector(".wb-response-trace");
    trace.replaceChildren();
    if (traceId) {
      trace.append("trace ", wb.el("a", { class: "wb-trace-link", href: wb.traceUrl(traceId), text: traceId }));
    }
  }

  document.querySelectorAll(".wb-endpoint").forEach(function (section) {
    const form = section.querySelector("form.wb-send");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      const init = {
        method: section.dataset.method,
        credentials: "same-origin",
        headers: { Accept: "application/json", "X-CSRFToken": csrfToken() },
      };
      const body = form.querySelector("textarea[name=body]");
      if (body) {
        try {
          JSON.parse(body.value);
        } catch (error) {
          show(section, "Not sent: the body is not JSON", String(error.message), "");
          return;
        }
        init.headers["Content-Type"] = "application/json";
        init.body = body.value;
      }
      fetch(url(section, form), init).then(function (response) {
        return response.text().then(function (text) {
          let shown = text;
          try {
            shown = JSON.stringify(JSON.parse(text), null, 2);
          } catch (error) {}
          show(section, response.status + " " + response.statusText, shown, response.headers.get("X-Trace-Id"));
        });
      }, function (error) {
        show(section, "Request failed", String(error), "");
      });
    });
  });
})();
