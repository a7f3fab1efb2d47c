// scoter dashboard: live sections, the throughput chart, retry and purge.
// Sections arrive as HTML the server escaped; stored data reaches the DOM from here only as
// text (textContent). No inline script runs: the Content-Security-Policy forbids it.
"use strict";
(() => {
  const body = document.body;
  const refresh = Math.max(Number(body.dataset.refresh) || 2000, 250);
  const tokenInput = document.getElementById("token");
  const status = document.getElementById("status");
  const flash = document.getElementById("flash");
  const selected = new Set();
  const SVG = "http://www.w3.org/2000/svg";
  const COLOURS = ["#2f6fde", "#1f9d55", "#b7791f", "#805ad5", "#d53f8c", "#319795"];

  function say(element, text, bad) {
    element.textContent = text;
    element.classList.toggle("bad", Boolean(bad));
    element.hidden = !text;
  }

  if (tokenInput) {
    tokenInput.value = sessionStorage.getItem("scoter-token") || "";
    tokenInput.addEventListener("input", () => {
      sessionStorage.setItem("scoter-token", tokenInput.value);
    });
  }

  // -- live sections ------------------------------------------------------------------------

  function swap(id, html) {
    const element = document.getElementById(id);
    const typing = document.activeElement.matches("input:not([type=checkbox]), select, textarea");
    if (!element || (typing && element.contains(document.activeElement))) {
      return; // not under the cursor of someone typing
    }
    const open = new Set();
    element.querySelectorAll("details[open]").forEach((d) => open.add(d.dataset.key));
    element.innerHTML = html;
    element.querySelectorAll("details").forEach((d) => {
      if (open.has(d.dataset.key)) {
        d.open = true;
      }
    });
    element.querySelectorAll("input[data-select]").forEach((box) => {
      box.checked = selected.has(box.value);
    });
  }

  async function update() {
    try {
      const response = await fetch(location.href, {
        headers: { Accept: "application/json" }, cache: "no-store",
      });
      const data = await response.json();
      for (const [id, html] of Object.entries(data.sections || {})) {
        swap(id, html);
      }
      if (data.chart) {
        draw(data.chart);
      }
      if (data.error) {
        say(status, "storage unreachable, showing the last sample: " + data.error, true);
      } else {
        say(status, "live · " + new Date().toLocaleTimeString(), false);
      }
    } catch (error) {
      say(status, "cannot reach the dashboard: " + error.message, true);
    }
  }

  // -- the chart ----------------------------------------------------------------------------

  function node(parent, name, attributes, text) {
    const element = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes)) {
      element.setAttribute(key, String(value));
    }
    if (text !== undefined) {
      element.textContent = text;
    }
    parent.appendChild(element);
    return element;
  }

  function draw(chart) {
    const svg = document.getElementById("chart");
    if (!svg) {
      return;
    }
    svg.replaceChildren();
    const [width, height, left, top, bottom] = [760, 220, 44, 24, 24];
    const queues = Object.entries(chart.queues);
    const n = chart.minutes;
    const dead = new Array(n).fill(0);
    let top_value = 1;
    for (const [, series] of queues) {
      series.dead.forEach((v, i) => { dead[i] += v; });
      top_value = Math.max(top_value, ...series.done, ...series.dead);
    }
    top_value = Math.max(top_value, ...dead);
    const x = (i) => left + (i / (n - 1)) * (width - left - 8);
    const y = (v) => height - bottom - (v / top_value) * (height - top - bottom);
    for (const v of [0, top_value / 2, top_value]) {
      node(svg, "line", { x1: left, x2: width - 8, y1: y(v), y2: y(v), class: "grid" });
      node(svg, "text", { x: left - 6, y: y(v) + 4, "text-anchor": "end", class: "axis" },
        String(top_value >= 10 ? Math.round(v) : Math.round(v * 10) / 10));
    }
    [[0, "60 min ago", "start"], [30, "30 min ago", "middle"], [n - 1, "now", "end"]].forEach(
      ([i, label, anchor]) => {
        node(svg, "text", { x: x(i), y: height - 6, "text-anchor": anchor, class: "axis" }, label);
      });
    const bar = (width - left) / n;
    dead.forEach((v, i) => {
      if (v > 0) {
        node(svg, "rect", { x: x(i) - bar / 3, y: y(v), width: (bar * 2) / 3,
          height: y(0) - y(v), class: "dead" });
      }
    });
    queues.forEach(([queue, series], k) => {
      const points = series.done.map((v, i) => x(i) + "," + y(v)).join(" ");
      node(svg, "polyline", { points, fill: "none", stroke: COLOURS[k % COLOURS.length],
        "stroke-width": 2 });
      const total = series.done.reduce((a, b) => a + b, 0);
      node(svg, "text", { x: left + 8 + k * 150, y: 14, fill: COLOURS[k % COLOURS.length],
        class: "legend" }, queue + ": " + total + " done");
    });
    const deadTotal = dead.reduce((a, b) => a + b, 0);
    node(svg, "text", { x: width - 10, y: 14, "text-anchor": "end", class: "legend dead-text" },
      deadTotal + " dead");
  }

  // -- actions ------------------------------------------------------------------------------

  document.addEventListener("change", (event) => {
    const all = event.target.closest("input[data-select-all]");
    const boxes = all ? document.querySelectorAll("input[data-select]") : [event.target];
    for (const box of boxes) {
      if (box.matches("input[data-select]")) {
        box.checked = all ? all.checked : box.checked;
        box.checked ? selected.add(box.value) : selected.delete(box.value);
      }
    }
  });

  document.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) {
      return;
    }
    const action = button.dataset.action;
    const form = new URLSearchParams();
    if (button.dataset.id !== undefined) {
      form.append("id", button.dataset.id);
    } else if (button.dataset.scope === "all") {
      form.append("all", "1");
    } else if (selected.size) {
      selected.forEach((id) => form.append("id", id));
    } else {
      say(flash, "select tasks first", true);
      return;
    }
    if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) {
      return;
    }
    const response = await fetch(body.dataset.api + "/" + action, {
      method: "POST", body: form,
      headers: { "X-Scoter-Token": tokenInput ? tokenInput.value : "" },
    });
    const data = await response.json().catch(() => ({}));
    if (response.ok) {
      say(flash, (action === "retry" ? "queued again: " : "purged: ") + data.count + " task(s)");
      selected.clear();
    } else {
      say(flash, "refused (" + response.status + "): " + (data.error || response.statusText), true);
    }
    update();
  });

  if (body.dataset.live === "1") {
    update();
    setInterval(update, refresh);
  }
})();
