// pbx-codes console: the live feed, counts, chart, alerts, call detail and unknown codes.
// Every text from the server is untrusted (carrier phrases come off the network): it is set with textContent only.
"use strict";

(function () {
  const MAX_ROWS = 500;
  const CATEGORIES = new Set(["ok", "busy", "no_answer", "declined", "unavailable", "invalid_number", "cancelled",
    "auth", "forbidden", "billing", "capacity", "media", "network", "config", "request_error", "not_found",
    "pending", "unknown"]);
  const SVG = "http://www.w3.org/2000/svg";

  const state = {
    lang: document.body.dataset.lang || "en",
    events: [],        // newest first
    alerts: [],        // newest first
    seen: { instance: new Set(), pbx: new Set(), trunk: new Set() },
    selected: null,    // linkedid shown in the detail panel
    received: 0,       // live hangups received since the page opened
  };

  // ---- small DOM helpers --------------------------------------------------------------------------------
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function $(id) { return document.getElementById(id); }
  function fmtTime(t) {
    if (typeof t !== "number") return "";
    return new Date(t * 1000).toLocaleTimeString([], { hour12: false });
  }
  function reason(ev) {
    const texts = ev.texts || {};
    return texts[state.lang] || texts.en || "";
  }
  function badge(category) {
    const cat = CATEGORIES.has(category) ? category : "unknown";
    return el("span", "badge cat-" + cat, category || "unknown");
  }
  // Counts, failure rate and unknown codes of the chosen agent of a fleet, or of every agent.
  function scope() {
    const name = String(new FormData(form).get("instance") || "").trim();
    return name ? "?instance=" + encodeURIComponent(name) : "";
  }
  async function getJSON(path) {
    const response = await fetch(path, { credentials: "same-origin", headers: { "Accept": "application/json" } });
    if (!response.ok) throw new Error(path + ": " + response.status);
    return response.json();
  }

  // ---- filters --------------------------------------------------------------------------------------------
  const form = $("filters");
  function filters() {
    const data = new FormData(form);
    const f = {};
    for (const key of ["instance", "pbx", "trunk", "category", "code", "search"]) f[key] = String(data.get(key) || "").trim();
    return f;
  }
  // Answered calls come in too (they are the failure rate's denominator); the feed shows them only when asked.
  const SUCCESS = new Set(["ok", "pending"]);
  function matches(ev, f) {
    if (!f.category && SUCCESS.has(ev.category)) return false;
    if (f.instance && ev.instance !== f.instance) return false;
    if (f.pbx && ev.pbx !== f.pbx) return false;
    if (f.trunk && ev.trunk !== f.trunk) return false;
    if (f.category && ev.category !== f.category) return false;
    if (f.code && String(ev.code || "") !== f.code && String(ev.sip || "") !== f.code) return false;
    if (f.search) {
      const hay = [ev.linkedid, ev.uniqueid, ev.number].map((v) => String(v || "")).join("\n");
      if (!hay.includes(f.search)) return false;
    }
    return true;
  }
  function remember(kind, value) {
    if (!value || state.seen[kind].has(value)) return;
    state.seen[kind].add(value);
    const select = form.elements[kind];
    const options = Array.from(state.seen[kind]).sort();
    const current = select.value;
    while (select.options.length > 1) select.remove(1);
    for (const v of options) {
      const option = el("option", null, v);
      option.value = v;
      select.appendChild(option);
    }
    select.value = current;
  }

  // ---- live feed ------------------------------------------------------------------------------------------
  function feedRow(ev) {
    const tr = el("tr");
    tr.dataset.linkedid = ev.linkedid || "";
    if (state.selected && ev.linkedid === state.selected) tr.classList.add("selected");
    tr.appendChild(el("td", "time", fmtTime(ev.time)));
    tr.appendChild(el("td", "instance", ev.instance || ""));
    tr.appendChild(el("td", "pbx", ev.pbx || ""));
    tr.appendChild(el("td", "trunk", ev.trunk || ""));
    tr.appendChild(el("td", "number", ev.number || ""));
    tr.appendChild(el("td", "code", ev.code || ev.sip || ""));
    tr.appendChild(el("td", "phrase", ev.phrase || ""));
    const cat = el("td", "category");
    cat.appendChild(badge(ev.category));
    tr.appendChild(cat);
    tr.appendChild(el("td", "reason", reason(ev)));
    tr.addEventListener("click", () => { if (ev.linkedid) showCall(ev.linkedid); });
    return tr;
  }
  function renderFeed() {
    const body = $("feed").tBodies[0];
    const f = filters();
    clear(body);
    let shown = 0;
    for (const ev of state.events) {
      if (!matches(ev, f)) continue;
      body.appendChild(feedRow(ev));
      shown += 1;
    }
    $("feed-empty").hidden = shown > 0;
    $("feed-empty").textContent = state.events.length ? "No hangup matches the filters." : "Waiting for hangups…";
  }
  function addEvent(ev, live) {
    state.events.unshift(ev);
    if (state.events.length > MAX_ROWS) state.events.length = MAX_ROWS;
    remember("instance", ev.instance);
    remember("pbx", ev.pbx);
    remember("trunk", ev.trunk);
    if (!live) return;
    if (matches(ev, filters())) {
      const body = $("feed").tBodies[0];
      body.insertBefore(feedRow(ev), body.firstChild);
      while (body.rows.length > MAX_ROWS) body.deleteRow(-1);
      $("feed-empty").hidden = true;
    }
    if (state.selected && ev.linkedid === state.selected) showCall(state.selected);
    scheduleStats();
  }
  // Live hangups come in batches (thousands a second from a fleet): every one is kept in `state.events`, and the
  // table is updated at most once per animation frame, with only the rows it can show.
  let pending = [];
  let frame = 0;
  function addLive(events) {
    for (const ev of events) {
      remember("instance", ev.instance);
      remember("pbx", ev.pbx);
      remember("trunk", ev.trunk);
      pending.push(ev);
    }
    if (pending.length > MAX_ROWS) pending = pending.slice(pending.length - MAX_ROWS);  // older ones scroll off
    state.received += events.length;
    document.body.dataset.received = String(state.received);
    if (!frame) frame = requestAnimationFrame(flushLive);
  }
  function flushLive() {
    frame = 0;
    const batch = pending;
    pending = [];
    if (!batch.length) return;
    const f = filters();
    const body = $("feed").tBodies[0];
    const rows = document.createDocumentFragment();
    let selected = false;
    for (let i = batch.length - 1; i >= 0; i -= 1) {  // newest first
      const ev = batch[i];
      if (matches(ev, f) && rows.childNodes.length < MAX_ROWS) rows.appendChild(feedRow(ev));
      if (state.selected && ev.linkedid === state.selected) selected = true;
    }
    state.events = batch.slice().reverse().concat(state.events);
    if (state.events.length > MAX_ROWS) state.events.length = MAX_ROWS;
    if (rows.childNodes.length) {
      body.insertBefore(rows, body.firstChild);
      while (body.rows.length > MAX_ROWS) body.deleteRow(-1);
      $("feed-empty").hidden = true;
    }
    if (selected) showCall(state.selected);
    scheduleStats();
  }

  // ---- call detail ----------------------------------------------------------------------------------------
  const LEG_FIELDS = [["Leg", "uniqueid"], ["Channel", "channel"], ["Instance", "instance"], ["PBX", "pbx"], ["Trunk", "trunk"],
    ["Number", "number"], ["Code", "code"], ["Phrase", "phrase"], ["SIP", "sip"], ["Q.850", "q850"],
    ["Catalog", "catalog"], ["Retry", "retry"], ["Fault", "fault"], ["Hung up by", "hangup_by"]];
  async function showCall(linkedid) {
    state.selected = linkedid;
    for (const tr of $("feed").tBodies[0].rows) tr.classList.toggle("selected", tr.dataset.linkedid === linkedid);
    const panel = $("detail"), legs = $("detail-legs");
    $("detail-id").textContent = linkedid;
    panel.hidden = false;
    let data;
    try {
      data = await getJSON("/api/call/" + encodeURIComponent(linkedid));
    } catch (err) {
      clear(legs);
      legs.appendChild(el("p", "muted", "No details for this call."));
      return;
    }
    if (state.selected !== linkedid) return;
    clear(legs);
    data.legs.forEach((leg, i) => {
      const box = el("div", "leg");
      const title = el("h3", null, "Leg " + (i + 1) + " ");
      title.appendChild(badge(leg.category));
      box.appendChild(title);
      box.appendChild(el("p", "reason", reason(leg)));
      const dl = el("dl");
      for (const [label, key] of LEG_FIELDS) {
        if (leg[key] === null || leg[key] === undefined || leg[key] === "") continue;
        dl.appendChild(el("dt", null, label));
        dl.appendChild(el("dd", null, leg[key]));
      }
      dl.appendChild(el("dt", null, "Time"));
      dl.appendChild(el("dd", null, fmtTime(leg.time)));
      box.appendChild(dl);
      legs.appendChild(box);
    });
  }
  $("detail-close").addEventListener("click", () => {
    state.selected = null;
    $("detail").hidden = true;
    for (const tr of $("feed").tBodies[0].rows) tr.classList.remove("selected");
  });

  // ---- alerts ---------------------------------------------------------------------------------------------
  function renderAlerts() {
    const list = $("alerts");
    clear(list);
    for (const a of state.alerts.slice(0, 20)) {
      const cleared = a.state === "cleared";
      const li = el("li", "alert " + (cleared ? "alert-cleared" : "alert-fired"));
      li.appendChild(el("span", "state", cleared ? "cleared" : "fired"));
      li.appendChild(el("strong", "name", a.name || "alert"));
      li.appendChild(el("span", "message", a.message || ""));
      li.appendChild(el("span", "when", fmtTime(a.time)));
      list.appendChild(li);
    }
    $("alerts-empty").hidden = state.alerts.length > 0;
  }
  function addAlert(a) {
    state.alerts.unshift(a);
    if (state.alerts.length > 50) state.alerts.length = 50;
    renderAlerts();
  }

  // ---- counts and chart -----------------------------------------------------------------------------------
  function countsTable(id, rows, label) {
    const body = $(id).tBodies[0];
    clear(body);
    const keys = Object.keys(rows).sort((a, b) => (rows[b][2] || 0) - (rows[a][2] || 0) || a.localeCompare(b));
    for (const key of keys) {
      const tr = el("tr");
      const first = el("td");
      if (label === "category") first.appendChild(badge(key)); else first.textContent = key;
      tr.appendChild(first);
      for (const n of rows[key]) tr.appendChild(el("td", null, n));
      body.appendChild(tr);
    }
    if (!keys.length) {
      const tr = el("tr");
      const td = el("td", "muted", "nothing yet");
      td.colSpan = 4;
      tr.appendChild(td);
      body.appendChild(tr);
    }
  }
  function drawChart(points) {
    const svg = $("chart");
    clear(svg);
    const W = 300, H = 120, left = 26, bottom = 14, top = 6;
    const plotH = H - bottom - top, n = Math.max(points.length, 1), step = (W - left - 4) / n;
    const line = (x1, y1, x2, y2) => {
      const l = document.createElementNS(SVG, "line");
      l.setAttribute("x1", x1); l.setAttribute("y1", y1); l.setAttribute("x2", x2); l.setAttribute("y2", y2);
      l.setAttribute("class", "axis");
      svg.appendChild(l);
    };
    const label = (x, y, text, anchor) => {
      const t = document.createElementNS(SVG, "text");
      t.setAttribute("x", x); t.setAttribute("y", y); t.setAttribute("text-anchor", anchor || "end");
      t.textContent = text;
      svg.appendChild(t);
    };
    line(left, top, left, H - bottom);
    line(left, H - bottom, W - 2, H - bottom);
    label(left - 3, top + 6, "100%");
    label(left - 3, top + plotH / 2 + 3, "50%");
    label(left - 3, H - bottom, "0%");
    points.forEach((p, i) => {
      const rate = Math.max(0, Math.min(1, Number(p.rate) || 0));
      const h = p.total ? Math.max(1, rate * plotH) : 1;
      const r = document.createElementNS(SVG, "rect");
      r.setAttribute("x", left + 1 + i * step + 1);
      r.setAttribute("y", H - bottom - h);
      r.setAttribute("width", Math.max(1, step - 2));
      r.setAttribute("height", h);
      r.setAttribute("class", p.total ? "bar" : "bar empty");
      const tip = document.createElementNS(SVG, "title");
      tip.textContent = fmtTime(p.t) + ": " + (p.failed || 0) + " of " + (p.total || 0) + " failed";
      r.appendChild(tip);
      svg.appendChild(r);
    });
    if (points.length) {
      label(left + 2, H - 3, fmtTime(points[0].t).slice(0, 5), "start");
      label(W - 2, H - 3, fmtTime(points[points.length - 1].t).slice(0, 5), "end");
    }
  }
  async function refreshStats() {
    try {
      const stats = await getJSON("/api/stats" + scope());
      countsTable("stats-trunk", stats.by_trunk || {}, "trunk");
      countsTable("stats-category", stats.by_category || {}, "category");
      drawChart(stats.failure_rate || []);
    } catch (err) { /* the next tick retries */ }
  }
  // One refresh a second at most; a hangup that arrives while one is pending or running asks for another, so the
  // counts never wait for the 5 s tick (the store writes in batches, so a refresh can precede the row it missed).
  let statsTimer = null;
  let statsAgain = false;
  function scheduleStats() {
    if (statsTimer) { statsAgain = true; return; }
    statsTimer = setTimeout(async () => {
      statsAgain = false;
      await Promise.all([refreshStats(), refreshUnknown()]);
      statsTimer = null;
      if (statsAgain) scheduleStats();
    }, 1000);
  }

  // ---- unknown codes --------------------------------------------------------------------------------------
  async function refreshUnknown() {
    let data;
    try { data = await getJSON("/api/unknown" + scope()); } catch (err) { return; }
    const body = $("unknown").tBodies[0];
    clear(body);
    for (const u of data.items || []) {
      const tr = el("tr");
      for (const v of [u.trunk, u.catalog, u.code, u.phrase, u.count]) tr.appendChild(el("td", null, v ?? ""));
      const td = el("td");
      if (u.trunk) {
        const a = el("a", null, "TOML");
        a.href = "/api/unknown/export?trunk=" + encodeURIComponent(u.trunk);
        a.setAttribute("download", "");
        td.appendChild(a);
      }
      tr.appendChild(td);
      body.appendChild(tr);
    }
    $("unknown-empty").hidden = (data.items || []).length > 0;
  }

  // ---- wiring ---------------------------------------------------------------------------------------------
  $("lang").addEventListener("change", (e) => {
    state.lang = e.target.value;
    document.documentElement.lang = state.lang;
    renderFeed();
    if (state.selected) showCall(state.selected);
  });
  form.addEventListener("input", renderFeed);
  form.addEventListener("change", renderFeed);
  form.elements.instance.addEventListener("change", () => { scheduleStats(); });
  form.addEventListener("submit", (e) => e.preventDefault());
  form.addEventListener("reset", () => setTimeout(renderFeed, 0));

  function connect() {
    const source = new EventSource("/events?batch=1");
    const conn = $("conn");
    source.onopen = () => { conn.textContent = "live"; conn.className = "conn conn-on"; document.body.dataset.live = "1"; };
    source.onerror = () => { conn.textContent = "reconnecting"; conn.className = "conn conn-off"; };
    source.addEventListener("hangups", (e) => addLive(JSON.parse(e.data)));
    source.addEventListener("hangup", (e) => addLive([JSON.parse(e.data)]));
    source.addEventListener("alert", (e) => addAlert(JSON.parse(e.data)));
  }

  // Each part's state (PBX connections, store, webhook): green when up, red with the reason otherwise.
  async function refreshParts() {
    let data;
    try { data = await getJSON("/api/health"); } catch (err) { return; }
    const list = $("parts");
    list.textContent = "";
    for (const p of data.parts || []) {
      const li = el("li", "part " + (p.up ? "part-up" : "part-down"), p.part + ": " + p.state);
      li.dataset.state = p.state;
      if (p.reason) li.title = p.reason;
      list.appendChild(li);
    }
  }

  async function start() {
    connect();
    refreshParts();
    setInterval(refreshParts, 5000);
    try {
      const recent = await getJSON("/api/recent?limit=200");
      const known = new Set(state.events.map((e) => e.uniqueid + "|" + e.time));
      for (const ev of (recent.items || []).slice().reverse()) {
        if (!known.has(ev.uniqueid + "|" + ev.time)) addEvent(ev, false);
      }
      state.events.sort((a, b) => (b.time || 0) - (a.time || 0));
    } catch (err) { /* the live feed still works */ }
    renderFeed();
    try {
      const alerts = await getJSON("/api/alerts");
      const key = (a) => [a.name, a.state, a.time].join("|");
      const live = new Set(state.alerts.map(key));
      const earlier = (alerts.items || []).slice().reverse().filter((a) => !live.has(key(a)));
      state.alerts = state.alerts.concat(earlier);
      renderAlerts();
    } catch (err) { /* none shown */ }
    refreshStats();
    refreshUnknown();
    setInterval(refreshStats, 5000);
    setInterval(refreshUnknown, 15000);
  }
  start();
})();
