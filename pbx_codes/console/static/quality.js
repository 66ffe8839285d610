// Trunk quality page: table per trunk over a range, chart per trunk, drill-down to causes and calls.
// Every value from the server is put into the page as text (textContent), never as HTML.
"use strict";
(function () {
  const COLORS = { asr: "#2f6fb0", ner: "#2e9d5b", seer: "#c28a16", isa: "#c0392b" };
  const SVG = "http://www.w3.org/2000/svg";
  let selected = null; // {pbx, trunk}

  const pct = (v) => (v === null || v === undefined ? "-" : (v * 100).toFixed(1) + "%");
  const num = (v, digits) => (v === null || v === undefined ? "-" : Number(v).toFixed(digits));

  function rangeQuery() {
    const form = document.getElementById("range");
    const choice = form.querySelector("input[name=range]:checked").value;
    const params = new URLSearchParams();
    if (choice === "custom") {
      const from = form.elements.from.value, to = form.elements.to.value;
      if (from) params.set("from", String(Date.parse(from) / 1000));
      if (to) params.set("to", String(Date.parse(to) / 1000));
    } else {
      params.set("range", choice);
    }
    return params;
  }

  async function getJSON(path, extra) {
    const params = rangeQuery();
    for (const [k, v] of Object.entries(extra || {})) if (v !== null && v !== undefined && v !== "") params.set(k, v);
    const response = await fetch(path + "?" + params.toString(), { credentials: "same-origin" });
    if (!response.ok) throw new Error(path + ": " + response.status);
    return response.json();
  }

  function row(cells, onClick) {
    const tr = document.createElement("tr");
    for (const c of cells) {
      const td = document.createElement("td");
      td.textContent = c === null || c === undefined ? "" : String(c);
      tr.appendChild(td);
    }
    if (onClick) tr.addEventListener("click", onClick);
    return tr;
  }

  function topCategories(item) {
    const counts = {};
    for (const f of item.top_failures || []) counts[f.category] = (counts[f.category] || 0) + f.count;
    return Object.entries(counts).sort((a, b) => b[1] - a[1]).slice(0, 3)
      .map(([c, n]) => c + " " + n).join(", ");
  }

  async function loadTable() {
    const data = await getJSON("/api/quality");
    const body = document.querySelector("#quality tbody");
    body.replaceChildren();
    for (const item of data.items) {
      const tr = row([item.pbx, item.trunk, item.seizures, pct(item.asr), pct(item.ner), pct(item.seer),
        pct(item.isa), num(item.pdd_p50_ms, 0), num(item.pdd_p95_ms, 0), num(item.acd_s, 1), topCategories(item)],
        () => selectTrunk(item.pbx, item.trunk));
      tr.dataset.trunk = item.trunk;
      tr.dataset.pbx = item.pbx;
      if (selected && selected.trunk === item.trunk && selected.pbx === item.pbx) tr.classList.add("selected");
      body.appendChild(tr);
    }
    document.getElementById("quality-empty").hidden = data.items.length > 0;
    showRange(data);
    if (selected) await loadTrunk();
  }

  // A preset range starts on the hour before its length (the table then reads whole hours only): say since when.
  function showRange(data) {
    const when = (t) => new Date(t * 1000).toLocaleString([], { weekday: "short", day: "numeric", month: "short",
      hour: "2-digit", minute: "2-digit" });
    document.getElementById("quality-range").textContent = data.since_hour
      ? "Since " + when(data.from) + " (from the start of that hour) until now"
      : "From " + when(data.from) + " to " + when(data.to);
  }

  async function selectTrunk(pbx, trunk) {
    selected = { pbx, trunk };
    for (const tr of document.querySelectorAll("#quality tbody tr")) {
      tr.classList.toggle("selected", tr.dataset.trunk === trunk && tr.dataset.pbx === pbx);
    }
    document.getElementById("calls-area").hidden = true;
    await loadTrunk();
  }

  async function loadTrunk() {
    const scope = { pbx: selected.pbx, trunk: selected.trunk };
    const [series, causes] = await Promise.all([getJSON("/api/quality/series", scope),
      getJSON("/api/quality/causes", scope)]);
    document.getElementById("trunk").hidden = false;
    document.getElementById("trunk-name").textContent = selected.trunk + " (" + selected.pbx + ")";
    drawChart(series.points);
    const body = document.querySelector("#causes tbody");
    body.replaceChildren();
    for (const c of causes.items) {
      body.appendChild(row([c.category, c.class + (c.ner ? "" : " (network)"), c.code, c.phrase, c.count,
        pct(c.share)], () => loadCalls(c)));
    }
  }

  function drawChart(points) {
    const svg = document.getElementById("trunk-chart");
    svg.replaceChildren();
    const w = 600, h = 160, left = 34, top = 8, bottom = 20, plotW = w - left - 6, plotH = h - top - bottom;
    for (const p of [0, 0.5, 1]) {
      const y = top + plotH * (1 - p);
      const line = document.createElementNS(SVG, "line");
      line.setAttribute("x1", left); line.setAttribute("x2", w); line.setAttribute("y1", y); line.setAttribute("y2", y);
      line.setAttribute("stroke", "#dde3ea");
      svg.appendChild(line);
      const label = document.createElementNS(SVG, "text");
      label.setAttribute("x", 0); label.setAttribute("y", y + 4); label.setAttribute("font-size", "10");
      label.textContent = (p * 100) + "%";
      svg.appendChild(label);
    }
    const n = Math.max(1, points.length - 1);
    for (const key of Object.keys(COLORS)) {
      const coords = [];
      points.forEach((p, i) => {
        if (p[key] !== null && p[key] !== undefined) {
          const x = (left + plotW * i / n).toFixed(1), y = (top + plotH * (1 - p[key])).toFixed(1);
          coords.push(x + "," + y);
          const dot = document.createElementNS(SVG, "circle");  // a lone bucket still shows
          dot.setAttribute("cx", x); dot.setAttribute("cy", y); dot.setAttribute("r", "2.5");
          dot.setAttribute("fill", COLORS[key]);
          svg.appendChild(dot);
        }
      });
      if (!coords.length) continue;
      const line = document.createElementNS(SVG, "polyline");
      line.setAttribute("fill", "none");
      line.setAttribute("stroke", COLORS[key]);
      line.setAttribute("stroke-width", "2");
      line.setAttribute("points", coords.join(" "));
      line.setAttribute("data-measure", key);
      svg.appendChild(line);
    }
  }

  async function loadCalls(cause) {
    const data = await getJSON("/api/quality/calls", { pbx: selected.pbx, trunk: selected.trunk,
      category: cause.category, code: cause.code });
    document.getElementById("calls-area").hidden = false;
    document.getElementById("calls-title").textContent = selected.trunk + " · " + cause.category + " " +
      (cause.code || "") + " · " + data.total;
    const body = document.querySelector("#calls tbody");
    body.replaceChildren();
    document.getElementById("call-legs").replaceChildren();
    for (const c of data.items) {
      body.appendChild(row([new Date(c.time * 1000).toISOString().replace("T", " ").slice(0, 19), c.linkedid,
        c.code, c.phrase, num(c.pdd_ms, 0), num(c.duration_s, 1)], () => loadCall(c.linkedid)));
    }
  }

  async function loadCall(linkedid) {
    if (!linkedid) return;
    const response = await fetch("/api/call/" + encodeURIComponent(linkedid), { credentials: "same-origin" });
    const box = document.getElementById("call-legs");
    box.replaceChildren();
    if (!response.ok) return;
    const data = await response.json();
    for (const leg of data.legs) {
      const p = document.createElement("p");
      p.className = "leg";
      const texts = leg.texts || {};
      p.textContent = [leg.trunk, leg.code, leg.phrase, leg.category, texts.en || ""].filter(Boolean).join(" · ");
      box.appendChild(p);
    }
  }

  document.getElementById("range").addEventListener("submit", (e) => { e.preventDefault(); loadTable(); });
  for (const radio of document.querySelectorAll("#range input[name=range]")) {
    radio.addEventListener("change", () => { if (radio.value !== "custom") loadTable(); });
  }
  loadTable();
})();
