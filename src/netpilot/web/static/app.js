// netpilot dashboard: reads the REST API with the bearer token, follows the loop over Server-Sent Events.
// One clock (the simulated one, UTC) and one unit for utilisation (%) everywhere on the page.
"use strict";

const state = { token: null, me: null, network: null, positions: {}, unplaced: new Set(), labels: {},
                selectedLink: null, selectedChange: null, pinned: false, congestion: 0.9, ran: null };

// A root cause that explains less than this share of the measured change is shown as weak.
const WEAK_CAUSE = 0.3;
const VIEW = { width: 1000, height: 640, margin: 40 };

function token() {
  // The token comes in the URL's fragment (never sent to the server, so never in its logs) and is then kept here.
  const fromUrl = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromUrl) { localStorage.setItem("netpilot-token", fromUrl); history.replaceState(null, "", "/"); }
  return localStorage.getItem("netpilot-token");
}

async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: { "Authorization": `Bearer ${state.token}`, "Content-Type": "application/json", ...(options.headers || {}) },
  });
  if (response.status === 401) { showLogin("That token is not valid."); throw new Error("unauthorised"); }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(body.detail || response.statusText);
    error.status = response.status;
    throw error;
  }
  return body;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElementNS(attrs.svg ? "http://www.w3.org/2000/svg" : "http://www.w3.org/1999/xhtml", tag);
  for (const [k, v] of Object.entries(attrs)) if (k !== "svg") node.setAttribute(k, v);
  for (const c of children) node.append(c);
  return node;
}
const svg = (tag, attrs, ...children) => el(tag, { ...attrs, svg: true }, ...children);
const svgText = (attrs, text) => { const t = svg("text", attrs); t.textContent = text; return t; };

// --- formatting: one clock, one unit --------------------------------------------------------------------------

const pct = v => `${(100 * v).toFixed(0)} %`;
// Simulated time, as the API gives it (ISO, UTC): "13:30" or "2026-01-09 13:30".
const hhmm = iso => iso ? iso.slice(11, 16) : "–";
const dayTime = iso => iso ? `${iso.slice(0, 10)} ${iso.slice(11, 16)}` : "–";

// The loop and verification write utilisation as a ratio ("MLU 0.94 (limit 0.9)"); the page shows percent.
function percentify(text) {
  return String(text)
    .replace(/\b(MLU|limit|predicts?|predicted|peak|measured)((?: of| at| now)?) (\d+(?:\.\d+)?)\b(?!\s*%|\s*Mbit)/g,
             (_, word, link, value) => `${word}${link} ${pct(Number(value))}`)
    .replace(/\b(\d+\.\d+)(?= (?:before|forecast)\b)/g, value => pct(Number(value)));
}

// Cut at a word boundary, never mid-word.
function clip(text, length) {
  if (text.length <= length) return text;
  const cut = text.slice(0, length);
  const space = cut.lastIndexOf(" ");
  return `${space > length / 2 ? cut.slice(0, space) : cut} …`;
}

function colour(u, up) {
  if (!up) return "#d62828";
  if (u > state.congestion) return "#b3001b";
  if (u > 0.5) return "#e0a800";
  return "#2e9e4f";
}

function showLogin(message) {
  document.getElementById("login").hidden = false;
  document.getElementById("app").hidden = true;
  document.getElementById("login-error").textContent = message || "";
}

// --- topology layout ------------------------------------------------------------------------------------------

// Importers write (0, 0) for a PoP whose position the source does not give: no backbone sits at "null island".
const located = n => n.lat !== null && n.lon !== null && !(n.lat === 0 && n.lon === 0);

function mercator(n) {
  const lat = Math.max(-85, Math.min(85, n.lat)) * Math.PI / 180;
  return [n.lon * Math.PI / 180, -Math.log(Math.tan(Math.PI / 4 + lat / 2))];
}

// Scale points into the view, keeping their aspect ratio.
function fit(points) {
  const xs = Object.values(points).map(p => p[0]), ys = Object.values(points).map(p => p[1]);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const w = VIEW.width - 2 * VIEW.margin, h = VIEW.height - 2 * VIEW.margin;
  const scale = Math.min(w / Math.max(1e-9, x1 - x0), h / Math.max(1e-9, y1 - y0));
  const dx = VIEW.margin + (w - scale * (x1 - x0)) / 2, dy = VIEW.margin + (h - scale * (y1 - y0)) / 2;
  const out = {};
  for (const [id, [x, y]] of Object.entries(points)) out[id] = [dx + scale * (x - x0), dy + scale * (y - y0)];
  return out;
}

// Spring layout (Fruchterman–Reingold) of the nodes not in `fixed`, deterministic: a fixed number of rounds.
function relax(ids, edges, pos, fixed, rounds) {
  const k = Math.sqrt(VIEW.width * VIEW.height / Math.max(1, ids.length)) * 0.6;
  for (let round = 0; round < rounds; round++) {
    const heat = 40 * (1 - round / rounds) + 1;
    const move = Object.fromEntries(ids.map(id => [id, [0, 0]]));
    for (let i = 0; i < ids.length; i++) {
      for (let j = i + 1; j < ids.length; j++) {
        const [a, b] = [pos[ids[i]], pos[ids[j]]];
        let dx = a[0] - b[0], dy = a[1] - b[1];
        const d = Math.max(1, Math.hypot(dx, dy)), f = k * k / d;
        dx /= d; dy /= d;
        move[ids[i]][0] += dx * f; move[ids[i]][1] += dy * f;
        move[ids[j]][0] -= dx * f; move[ids[j]][1] -= dy * f;
      }
    }
    for (const [s, t] of edges) {
      const [a, b] = [pos[s], pos[t]];
      let dx = a[0] - b[0], dy = a[1] - b[1];
      const d = Math.max(1, Math.hypot(dx, dy)), f = d * d / k;
      dx /= d; dy /= d;
      move[s][0] -= dx * f; move[s][1] -= dy * f;
      move[t][0] += dx * f; move[t][1] += dy * f;
    }
    for (const id of ids) {
      if (fixed.has(id)) continue;
      const [mx, my] = move[id], len = Math.max(1e-9, Math.hypot(mx, my)), step = Math.min(len, heat);
      pos[id] = [Math.max(VIEW.margin, Math.min(VIEW.width - VIEW.margin, pos[id][0] + mx / len * step)),
                 Math.max(VIEW.margin, Math.min(VIEW.height - VIEW.margin, pos[id][1] + my / len * step))];
    }
  }
}

// Push routers apart until none is closer than `gap`, so a dense centre stays readable; each moves little.
function spread(ids, pos, gap) {
  for (let round = 0; round < 80; round++) {
    let moved = false;
    for (let i = 0; i < ids.length; i++) {
      for (let j = i + 1; j < ids.length; j++) {
        const a = pos[ids[i]], b = pos[ids[j]];
        let dx = b[0] - a[0], dy = b[1] - a[1];
        let d = Math.hypot(dx, dy);
        if (d >= gap) continue;
        if (d < 1e-6) { dx = 1; dy = 0.5; d = Math.hypot(dx, dy); }  // same spot: part them sideways
        const push = (gap - d) / 2;
        a[0] -= dx / d * push; a[1] -= dy / d * push;
        b[0] += dx / d * push; b[1] += dy / d * push;
        moved = true;
      }
    }
    if (!moved) break;
  }
  for (const id of ids) {
    pos[id][0] = Math.max(VIEW.margin / 2, Math.min(VIEW.width - VIEW.margin / 2, pos[id][0]));
    pos[id][1] = Math.max(VIEW.margin / 2, Math.min(VIEW.height - VIEW.margin / 2, pos[id][1]));
  }
}

function layout(network) {
  const routers = network.nodes.filter(n => n.kind === "router");
  const ids = routers.map(n => n.id), isRouter = new Set(ids);
  const edges = [], seen = new Set();
  for (const l of network.links) {
    const key = [l.source, l.target].sort().join("|");
    if (isRouter.has(l.source) && isRouter.has(l.target) && !seen.has(key)) { edges.push([l.source, l.target]); seen.add(key); }
  }
  const withPlace = routers.filter(located);
  let pos = {};
  const unplaced = new Set(ids.filter(id => !withPlace.some(n => n.id === id)));
  if (withPlace.length >= 2) {
    // Geographic: Web Mercator, fitted to the view; routers without a position settle among their neighbours.
    pos = fit(Object.fromEntries(withPlace.map(n => [n.id, mercator(n)])));
    const neighbours = id => edges.filter(e => e.includes(id)).map(e => e[0] === id ? e[1] : e[0]);
    for (let pass = 0; pass < 3; pass++) {
      for (const id of unplaced) {
        if (pos[id]) continue;
        const near = neighbours(id).filter(m => pos[m]);
        if (near.length) pos[id] = [near.reduce((s, m) => s + pos[m][0], 0) / near.length + 25,
                                    near.reduce((s, m) => s + pos[m][1], 0) / near.length + 25];
      }
    }
    [...unplaced].filter(id => !pos[id]).forEach((id, i) => { pos[id] = [VIEW.margin + 30 * i, VIEW.height - VIEW.margin]; });
    relax(ids, edges, pos, new Set(withPlace.map(n => n.id)), 60);
  } else {
    // No geography: a spring layout from a circle (no node is marked: none has a place to miss).
    unplaced.clear();
    ids.forEach((id, i) => {
      const a = 2 * Math.PI * i / ids.length;
      pos[id] = [VIEW.width / 2 + 250 * Math.cos(a), VIEW.height / 2 + 250 * Math.sin(a)];
    });
    relax(ids, edges, pos, new Set(), 300);
    pos = fit(pos);
  }
  spread(ids, pos, 30);
  // Cells and edge sites circle their router.
  const attached = {};
  for (const l of network.links) {
    if (pos[l.source] && !isRouter.has(l.target)) (attached[l.source] ||= new Set()).add(l.target);
  }
  for (const [router, set] of Object.entries(attached)) {
    [...set].forEach((id, i, list) => {
      const a = 2 * Math.PI * i / list.length + 0.4;
      pos[id] = [pos[router][0] + 13 * Math.cos(a), pos[router][1] + 13 * Math.sin(a)];
    });
  }
  network.nodes.forEach((n, i) => { pos[n.id] ||= [VIEW.margin + (i * 37) % (VIEW.width - 2 * VIEW.margin), VIEW.height - 12]; });
  return { pos, unplaced };
}

// Labels: per router the first of eight spots around it that overlaps no label or router placed so far.
function placeLabels(network, pos) {
  const boxes = [], labels = {};
  const routers = network.nodes.filter(n => n.kind === "router");
  for (const n of routers) { const [x, y] = pos[n.id]; boxes.push([x - 6, y - 6, x + 6, y + 6]); }
  const degree = {};
  for (const l of network.links) degree[l.source] = (degree[l.source] || 0) + 1;
  const overlap = (a, b) => Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0])) *
                            Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  for (const n of [...routers].sort((a, b) => (degree[b.id] || 0) - (degree[a.id] || 0))) {
    const [x, y] = pos[n.id], w = 7 * n.id.length + 4, h = 13;
    const spots = [[8, -4, "start"], [8, 14, "start"], [-8, -4, "end"], [-8, 14, "end"],
                   [0, -9, "middle"], [0, 20, "middle"], [12, 5, "start"], [-12, 5, "end"]];
    let best = null;
    for (const [dx, dy, anchor] of spots) {
      const left = anchor === "start" ? x + dx : anchor === "end" ? x + dx - w : x + dx - w / 2;
      const box = [left, y + dy - h + 2, left + w, y + dy + 2];
      const outside = box[0] < 0 || box[2] > VIEW.width || box[1] < 0 || box[3] > VIEW.height ? 1e6 : 0;
      const cost = outside + boxes.reduce((s, b) => s + overlap(box, b), 0);
      if (best === null || cost < best.cost) best = { cost, x: x + dx, y: y + dy, anchor, box };
      if (cost === 0) break;
    }
    boxes.push(best.box);
    labels[n.id] = best;
  }
  return labels;
}

function drawTopology() {
  const root = document.getElementById("topology");
  root.replaceChildren();
  const seen = new Set();
  const linkLayer = svg("g", { class: "links" }), nodeLayer = svg("g", { class: "nodes" });
  for (const l of state.network.links) {
    const key = [l.source, l.target].sort().join("|");
    const [a, b] = [state.positions[l.source], state.positions[l.target]];
    const line = svg("line", { x1: a[0], y1: a[1], x2: b[0], y2: b[1], "stroke-width": 3, stroke: "#2e9e4f",
                               "data-link": l.index, "data-pair": key });
    line.append(svg("title", {}));
    line.addEventListener("click", () => { state.selectedLink = l.index; refreshSeries(); });
    if (!seen.has(key)) linkLayer.append(line);
    seen.add(key);
  }
  for (const n of state.network.nodes) {
    const [x, y] = state.positions[n.id];
    const unknown = state.unplaced.has(n.id);
    const dot = svg("circle", { cx: x, cy: y, r: n.kind === "router" ? 5.5 : 2.5,
                                class: `${n.kind}${unknown ? " unplaced" : ""}`, "data-node": n.id });
    dot.append(svgText({}, unknown ? `${n.id} (no coordinates: placed among its neighbours)` : n.id));
    nodeLayer.append(dot);
  }
  for (const [id, label] of Object.entries(state.labels)) {
    const [x, y] = state.positions[id];
    nodeLayer.append(svgText({ x: label.x, y: label.y, "text-anchor": label.anchor, class: "halo" }, id));
    nodeLayer.append(svgText({ x: label.x, y: label.y, "text-anchor": label.anchor, "data-label": id,
                               "data-x": x, "data-y": y }, id));
  }
  root.append(linkLayer, nodeLayer);
}

function paintTopology(s) {
  // Per node pair, a direction that is down, else the busier one, colours the line.
  const worst = {};
  state.network.links.forEach((l, i) => {
    const key = [l.source, l.target].sort().join("|");
    const u = s.utilisation[i] ?? 0, up = s.link_up[i] ?? true;
    const known = worst[key];
    if (!known || (!up && known.up) || (up === known.up && u > known.u)) worst[key] = { u, up, id: l.id };
  });
  for (const line of document.querySelectorAll("#topology line")) {
    const w = worst[line.dataset.pair];
    if (!w) continue;
    line.setAttribute("stroke", colour(w.u, w.up));
    line.setAttribute("stroke-width", w.up ? 2 + 4 * Math.min(1.2, w.u) : 2.5);
    line.classList.toggle("down", !w.up);
    if (w.up) line.removeAttribute("stroke-dasharray"); else line.setAttribute("stroke-dasharray", "7 5");
    line.firstChild.textContent = w.up ? `${w.id}: ${pct(w.u)}` : `${w.id}: down`;
  }
}

// --- utilisation chart: axes, values, times, the congestion threshold -------------------------------------------

async function refreshSeries() {
  if (state.selectedLink === null) return;
  const link = state.network.links[state.selectedLink];
  const data = await api(`/api/telemetry?entity=${encodeURIComponent("link:" + link.id)}`);
  document.getElementById("series-name").textContent = link.id;
  const root = document.getElementById("series");
  root.replaceChildren();
  const keep = 120;
  const values = data.values.slice(-keep), times = data.timestamps.slice(-keep);
  const f = data.forecast;
  const future = f ? f.mean.length : 0;
  const n = Math.max(2, values.length + future);
  const top = Math.max(1.0, ...values, ...(f ? f.upper : [])) * 1.05;
  const box = { left: 48, right: 585, top: 12, bottom: 200 };
  const x = i => box.left + (box.right - box.left) * i / (n - 1);
  const y = v => box.bottom - (box.bottom - box.top) * Math.max(0, v) / top;
  // Axes and grid: utilisation in %, simulated time (UTC).
  const axes = svg("g", { class: "axes" });
  const step = top > 2 ? 0.5 : 0.25;
  for (let v = 0; v <= top + 1e-9; v += step) {
    axes.append(svg("line", { x1: box.left, x2: box.right, y1: y(v), y2: y(v), class: "grid" }));
    axes.append(svgText({ x: box.left - 6, y: y(v) + 4, "text-anchor": "end", class: "tick" }, pct(v)));
  }
  axes.append(svg("line", { x1: box.left, x2: box.left, y1: box.top, y2: box.bottom, class: "axis" }));
  axes.append(svg("line", { x1: box.left, x2: box.right, y1: box.bottom, y2: box.bottom, class: "axis" }));
  const stepMs = times.length > 1 ? (Date.parse(times.at(-1)) - Date.parse(times[0])) / (times.length - 1) : 60000;
  const timeAt = i => i < times.length ? times[i] :
    new Date(Date.parse(times.at(-1) || 0) + (i - times.length + 1) * stepMs).toISOString();
  // Ticks on round times: the smallest of 5, 10, 15, 30 minutes, 1, 2, 4 hours that gives at most 7 labels.
  const span = n * stepMs / 60000;
  const interval = [5, 10, 15, 30, 60, 120, 240].find(m => span / m <= 7) || 480;
  for (let i = 0; i < n; i++) {
    const t = Date.parse(timeAt(i)) / 60000;
    if (Number.isNaN(t) || Math.round(t) % interval !== 0) continue;
    axes.append(svg("line", { x1: x(i), x2: x(i), y1: box.bottom, y2: box.bottom + 4, class: "axis" }));
    axes.append(svgText({ x: x(i), y: box.bottom + 16, "text-anchor": "middle", class: "tick" }, hhmm(timeAt(i))));
  }
  axes.append(svgText({ x: 12, y: (box.top + box.bottom) / 2, class: "axis-label",
                        transform: `rotate(-90 12 ${(box.top + box.bottom) / 2})`, "text-anchor": "middle" }, "utilisation"));
  axes.append(svgText({ x: (box.left + box.right) / 2, y: 236, class: "axis-label", "text-anchor": "middle" },
                      "simulated time (UTC)"));
  root.append(axes);
  root.append(svg("line", { x1: box.left, x2: box.right, y1: y(state.congestion), y2: y(state.congestion),
                            class: "threshold" }));
  if (f) {
    const upper = f.upper.map((v, i) => `${x(values.length + i)},${y(v)}`);
    const lower = f.lower.map((v, i) => `${x(values.length + i)},${y(v)}`).reverse();
    root.append(svg("polygon", { points: upper.concat(lower).join(" "), class: "forecast-band" }));
    root.append(svg("polyline", { points: f.mean.map((v, i) => `${x(values.length + i)},${y(v)}`).join(" "),
                                  class: "forecast-mean" }));
  }
  root.append(svg("polyline", { points: values.map((v, i) => `${x(i)},${y(v)}`).join(" "), class: "measured" }));
  root.append(svgText({ x: box.left + 4, y: y(state.congestion) + 12, "text-anchor": "start", class: "threshold-label" },
                      `congestion threshold ${pct(state.congestion)}`));
  if (values.length) {
    const last = values.length - 1;
    root.append(svg("circle", { cx: x(last), cy: y(values[last]), r: 3, class: "now" }));
    root.append(svgText({ x: x(last) - 4, y: y(values[last]) - 7, "text-anchor": "end", class: "value" },
                        pct(values[last])));
  }
  document.getElementById("series-summary").textContent = values.length ?
    `${hhmm(times.at(-1))}: ${pct(values.at(-1))}` +
    (f ? `; forecast peak ${pct(f.peak)} in the next ${future} min (${f.model})` : "; no forecast yet") : "no samples yet";
}

// --- incidents, changes, audit --------------------------------------------------------------------------------

async function refreshIncidents() {
  const incidents = await api("/api/incidents");
  const root = document.getElementById("incidents");
  root.replaceChildren(...incidents.slice(0, 20).map(i => {
    const causes = i.causes.slice(0, 3).map((c, k) => {
      const weak = c.score < WEAK_CAUSE;
      return el("span", { class: weak ? "cause weak" : "cause", title: weak ?
                 `explains only ${pct(c.score)} of the measured change: a weak candidate` : "" },
                `${k + 1}. ${c.kind} ${c.target} (explains ${pct(c.score)}${weak ? ", weak" : ""})`);
    });
    const list = causes.length ? causes.flatMap((c, k) => k ? ["; ", c] : [c]) : ["localising…"];
    // The fault the loop believed from it has ended (its KPIs look healthy again).
    const ended = i.closed_at ? [el("span", { class: "ended" }, ` — ended ${hhmm(i.closed_at)}`)] : [];
    return el("li", { class: i.closed_at ? "incident closed" : "incident", "data-id": i.id },
              el("b", {}, `${i.id} `), `${hhmm(i.detected_at)} — `, ...list, ...ended);
  }));
}

// What a change does, as a tag: the RAN's slice splits and inference placements beside routing changes.
function changeKind(c) {
  const kinds = c.kinds || [];
  if (kinds.length && kinds.every(k => k === "set_slices")) return "slicing";
  if (kinds.length && kinds.every(k => k === "place_inference")) return "placement";
  return "routing";
}

async function refreshChanges() {
  // The newest changes, and every change waiting for a decision even when the RAN's slice splits (one a
  // minute) have pushed it down the list.
  const [recent, waitingAll] = await Promise.all([api("/api/changes?limit=50"), api("/api/changes?state=verified&limit=20")]);
  const seen = new Set(recent.map(c => c.id));
  const changes = [...waitingAll.filter(c => !seen.has(c.id)), ...recent];
  // Runs of slice splits the policy applied fold into their newest, so routing changes stay in view.
  const rows = [];
  for (const c of changes) {
    const last = rows.at(-1);
    const folds = changeKind(c) === "slicing" && c.state === "done";
    if (folds && last && last.folds && c.id !== state.selectedChange) { last.more += 1; continue; }
    rows.push({ c, folds, more: 0 });
  }
  const root = document.getElementById("changes");
  root.replaceChildren(...rows.slice(0, 30).map(({ c, more }) => {
    const kind = changeKind(c);
    const item = el("li", { "data-id": c.id, "data-kind": kind, class: c.id === state.selectedChange ? "selected" : "", title: percentify(c.why) },
                    el("span", { class: `state ${c.state}` }, c.state), " ", el("span", { class: `kind ${kind}` }, kind),
                    ` ${c.id} by ${c.proposer}: ${clip(percentify(c.why), 100)}${more ? ` (and ${more} earlier slice splits applied)` : ""}`);
    item.addEventListener("click", () => { state.selectedChange = c.id; state.pinned = true; refreshChanges(); });
    return item;
  }));
  // Until the person picks one, follow the change waiting for a decision (the loop may supersede proposals).
  const waiting = changes.find(c => c.state === "verified");
  if (!state.pinned && waiting) state.selectedChange = waiting.id;
  if (state.selectedChange) await showChange(state.selectedChange);
}

// A check that passes although its MLU is above the limit (no worse than before the change) is not a plain tick.
function checkItem(k) {
  const m = /MLU (\d+(?:\.\d+)?).*?limit (\d+(?:\.\d+)?)/.exec(k.detail);
  const above = m && Number(m[1]) > Number(m[2]);
  const kind = !k.ok ? "fail" : above ? "warn" : "ok";
  const mark = { ok: "✓", warn: "!", fail: "✗" }[kind];
  return el("li", { class: kind, title: kind === "warn" ? "passes: no worse than before the change, but above the limit" : "" },
            `${mark} ${k.name}: ${percentify(k.detail)}`);
}

async function showChange(id) {
  const c = await api(`/api/changes/${id}`);
  const root = document.getElementById("change-detail");
  const checks = (c.verification?.checks || []).map(checkItem);
  // Routing changes name a link; the RAN's name a cell, an edge site or a service.
  const diff = c.diff.map(d => `${d.link ?? d.device}: ${d.field} ${d.before} → ${d.after}`).join("\n");
  const config = Object.entries(c.config_diff).map(([dev, text]) => `# ${dev}\n${text}`).join("\n");
  const outcomes = c.previous_outcomes.map(o =>
    `${o.change}: MLU ${pct(o.mlu_before)} → predicted ${pct(o.predicted_mlu)}, measured ${o.measured_mlu === null ? "pending" : pct(o.measured_mlu)}`).join("\n");
  const buttons = el("p", {});
  if (c.state === "verified" && state.me.role === "approver") {
    const approve = el("button", { id: "approve", class: "approve" }, "Approve");
    const reject = el("button", { id: "reject" }, "Reject");
    approve.addEventListener("click", () => decide(id, "approve"));
    reject.addEventListener("click", () => decide(id, "reject"));
    buttons.append(approve, reject);
  }
  // A routing change rolls back while checked and once done (its metrics reverted); a RAN change only while
  // checked (the API refuses the rest: the next plan replaces it).
  const ran = changeKind(c) !== "routing";
  if ((c.state === "checking" || (c.state === "done" && !ran)) && state.me.role === "approver") {
    const back = el("button", { id: "rollback" }, "Roll back");
    back.addEventListener("click", () => decide(id, "rollback"));
    buttons.append(back);
  }
  root.replaceChildren(
    el("h3", {}, `Change ${c.id} `, el("span", { class: `state ${c.state}`, id: "change-state" }, c.state), " ",
       el("span", { class: `kind ${changeKind(c)}`, id: "change-kind" }, changeKind(c))),
    el("p", {}, percentify(c.why)), buttons,
    el("h4", {}, "Diff"), el("pre", { id: "diff" }, diff || "(none)"),
    el("h4", {}, "Verification"), el("ul", { id: "checks" }, ...checks),
    el("h4", {}, "Rendered FRR config"), el("pre", { id: "config" }, config || `(${c.config_note || "no device changes"})`),
    el("h4", {}, "Earlier changes: predicted vs measured"), el("pre", {}, outcomes || "(none yet)"));
}

async function decide(id, action) {
  state.selectedChange = id;
  state.pinned = true;  // keep showing the change decided on, not the next proposal
  try {
    await api(`/api/changes/${id}/${action}`, { method: "POST", body: JSON.stringify({ why: "decided in the dashboard" }) });
  } catch (e) {  // e.g. the autopilot superseded the proposal a moment ago
    document.getElementById("change-detail").prepend(el("p", { class: "fail", id: "decision-error" }, e.message));
  }
  await refreshChanges();
}

// --- the AI-RAN: cells (slice shares) and edge sites (GPUs for the RAN and for AI) --------------------------------

const SLICE_COLOURS = { eMBB: "#4a7fd4", URLLC: "#e07b39", mMTC: "#58a55c" };
const pct1 = v => `${(100 * v).toFixed(1)} %`;
const num = (v, digits = 1) => v.toFixed(digits);

async function refreshRan() {
  if (state.ran === false) return;  // this loop runs no AI-RAN part: the panels stay hidden
  let r;
  try { r = await api("/api/ran?cells=12"); } catch (e) {
    if (e.status === 404) state.ran = false;  // the API answers 404 when the loop runs no AI-RAN part
    return;
  }
  state.ran = true;
  document.getElementById("cells-panel").hidden = false;
  document.getElementById("sites-panel").hidden = false;
  drawCells(r);
  drawSites(r);
  document.querySelector("#services tbody").replaceChildren(...r.services.map(s =>
    el("tr", { "data-service": s.name }, el("td", {}, s.name), el("td", {}, num(s.requests_per_s)),
       el("td", {}, num(s.unserved_per_s)), el("td", {}, num(s.slo_ms, 0)),
       el("td", { class: s.slo_met ? "ok" : "fail", title: `target: ${pct(r.slo_target)} of requests within the SLO` },
          `${pct1(s.slo_met_share)} ${s.slo_met ? "✓" : "✗"}`),
       el("td", { title: "requests from cells some edge site up can answer within the SLO (round trip plus response time at the utilisation cap)" },
          pct1(s.reachable_share)))));
  if (r.cells.length && r.sites.length) document.body.dataset.ran = "true";
}

function drawCells(r) {
  document.getElementById("cells-summary").textContent = r.ts ?
    `${r.cells_up} of ${r.cells_total} up; SLA met on ${pct1(r.sla_met_share)} of cell-slices; the ${r.cells.length} busiest` : "";
  const root = document.getElementById("cells");
  // Drawn 800 units wide (about the wide column's pixels, so text keeps its size); 100 % of a cell's PRBs: 420.
  const row = 20, top = 20, left = 92, width = 420;
  const height = top + row * Math.max(1, r.cells.length) + 6;
  root.setAttribute("viewBox", `0 0 800 ${height}`);
  root.replaceChildren();
  const x = v => left + width * Math.max(0, Math.min(1.3, v));
  for (const v of [0, 0.5, 1]) {
    root.append(svg("line", { x1: x(v), x2: x(v), y1: top - 4, y2: height - 4, stroke: "#e4e7ee" }));
    root.append(svgText({ x: x(v), y: top - 8, "text-anchor": "middle", class: "muted" }, pct(v)));
  }
  r.cells.forEach((cell, i) => {
    const y = top + i * row;
    const g = svg("g", { "data-cell": cell.id });
    g.append(svgText({ x: 0, y: y + 13, class: cell.up ? "" : "fail" }, cell.up ? cell.id : `${cell.id} down`));
    let at = 0;
    for (const s of cell.slices) {
      const bar = svg("rect", { x: x(at), y: y + 3, width: Math.max(0, width * s.share), height: 13,
                                fill: SLICE_COLOURS[s.name] || "#8a94a6", "data-slice": s.name });
      bar.append(svgText({}, `${cell.id} ${s.name}: ${pct(s.share)} of ${cell.prbs} PRBs; demand ${num(s.demand_prbs)} PRBs, ` +
                             `granted ${num(s.grant_prbs)}, guaranteed ${num(s.guaranteed_prbs)}${s.sla_met ? "" : " (SLA missed)"}`));
      g.append(bar);
      at += s.share;
    }
    g.append(svg("line", { x1: x(cell.load), x2: x(cell.load), y1: y + 1, y2: y + 18, class: "load" }));
    const missed = cell.slices.filter(s => !s.sla_met).map(s => s.name);
    g.append(svgText({ x: x(1.3) + 8, y: y + 13 }, `load ${pct(cell.load)}`));
    g.append(svgText({ x: 798, y: y + 13, "text-anchor": "end", class: missed.length ? "fail" : "ok" },
                     missed.length ? `✗ ${missed.join(", ")}` : "✓ SLA"));
    root.append(g);
  });
}

function drawSites(r) {
  const root = document.getElementById("sites");
  // Drawn 520 units wide (about the narrow column's pixels); the axis (240) spans the largest site's GPUs.
  const row = 34, top = 20, left = 70, width = 240;
  const most = Math.max(1, ...r.sites.map(s => s.gpus));
  const height = top + row * Math.max(1, r.sites.length) + 4;
  root.setAttribute("viewBox", `0 0 520 ${height}`);
  root.replaceChildren();
  const x = v => left + width * v / most;
  const step = most > 16 ? Math.ceil(most / 8) : most > 8 ? 2 : 1;
  for (let v = 0; v <= most; v += step) {
    root.append(svg("line", { x1: x(v), x2: x(v), y1: top - 4, y2: height - 6, class: "grid" }));
    root.append(svgText({ x: x(v), y: top - 8, "text-anchor": "middle", class: "muted" }, String(v)));
  }
  root.append(svgText({ x: x(most) + 6, y: top - 8, class: "muted" }, "GPUs"));
  r.sites.forEach((site, i) => {
    const y = top + i * row;
    const g = svg("g", { "data-site": site.id });
    g.append(svgText({ x: 0, y: y + 12, class: site.up ? "" : "fail" }, site.id));
    g.append(svgText({ x: 0, y: y + 25, class: site.up ? "muted" : "fail" }, site.up ? `${site.gpus} GPUs, up` : "down"));
    const ran = Math.min(site.ran_gpus, site.gpus);
    const reservedIdle = Math.max(0, Math.min(site.ran_reserved_gpus, site.gpus) - ran);
    const powered = Math.max(0, Math.min(site.ai_powered_gpus, site.gpus - ran - reservedIdle));
    const busy = Math.min(site.ai_busy_gpus, powered);
    const parts = [["ran", ran, "#1d2330", `RAN in use: ${num(site.ran_gpus, 2)} GPUs`],
                   ["reserved", reservedIdle, "#9aa3b5", `reserved for the RAN: ${num(site.ran_reserved_gpus, 2)} GPUs`],
                   ["ai", busy, "#7b3fe4", `AI busy: ${num(site.ai_busy_gpus, 2)} GPUs`],
                   ["aion", powered - busy, "#c9b3f5", `AI powered: ${num(site.ai_powered_gpus, 0)} GPUs`],
                   ["free", Math.max(0, site.gpus - ran - reservedIdle - powered), "#e4e7ee", "off"]];
    let at = 0;
    for (const [part, value, fill, label] of parts) {
      const bar = svg("rect", { x: x(at), y: y + 2, width: Math.max(0, x(value) - x(0)), height: 14, fill, "data-part": part });
      bar.append(svgText({}, `${site.id}: ${label}`));
      g.append(bar);
      at += value;
    }
    g.append(svgText({ x: x(most) + 30, y: y + 13 },
                     `RAN ${num(site.ran_gpus)} / ${num(site.ran_reserved_gpus)} · AI ${num(site.ai_busy_gpus)} / ${num(site.ai_powered_gpus, 0)}`));
    g.append(svgText({ x: left, y: y + 29, class: "muted" },
                     `models: ${site.models.length ? site.models.join(", ") : "none"} · ${num(site.requests_per_s)} requests/s`));
    root.append(g);
  });
}

function paintAudit(audit) {
  document.getElementById("audit-status").textContent = audit.intact ? "hash chain intact" : `BROKEN: ${audit.detail}`;
  document.getElementById("audit").replaceChildren(...audit.entries.reverse().map(e =>
    el("li", { title: `written ${e.at} (wall clock)` },
       `${e.sim_at ? hhmm(e.sim_at) : "before " + hhmm(state.firstTime)} ${e.actor} ${e.action} ${e.change_id}`)));
}

async function refreshState() {
  const s = await api("/api/state");
  state.congestion = s.congestion;
  state.firstTime ||= s.ts;
  const mlu = document.getElementById("mlu");
  mlu.textContent = pct(s.mlu);
  mlu.dataset.value = s.mlu;
  mlu.className = s.mlu > s.congestion ? "hot" : "";
  document.getElementById("threshold").textContent = pct(s.congestion);
  document.getElementById("clock").textContent = s.ts ? `${dayTime(s.ts)} UTC` : "–";
  document.getElementById("latency").textContent = s.latency_ms === null ? "–" : s.latency_ms.toFixed(1);
  if (s.utilisation.length) {
    paintTopology(s);
    if (state.selectedLink === null) state.selectedLink = s.utilisation.indexOf(Math.max(...s.utilisation));
  }
  return s;
}

async function refreshAll() {
  try {
    if (state.selectedLink === null) await refreshState();  // the first time: which link to chart
    const [, , , audit] = await Promise.all([refreshSeries(), refreshIncidents(), refreshChanges(),
                                             api("/api/audit?limit=40"), refreshRan()]);
    // The clock last, and the audit log painted in the same step as the clock: the state is fetched after the
    // log, so no entry the page shows is later than the time in its header, at any moment.
    const s = await refreshState();
    paintAudit(audit);
    // A marker for screenshots and tests: the page shows data, not its empty skeleton.
    if (s.ts && document.querySelector("#series .measured")) document.body.dataset.loaded = "true";
  } catch (e) { console.error(e); }
}

async function start() {
  state.token = token();
  if (!state.token) { showLogin(); return; }
  try { state.me = await api("/api/me"); } catch (e) { return; }
  document.getElementById("who").textContent = `${state.me.user} (${state.me.role})`;
  document.getElementById("login").hidden = true;
  document.getElementById("app").hidden = false;
  state.network = await api("/api/network");
  const placed = layout(state.network);
  state.positions = placed.pos;
  state.unplaced = placed.unplaced;
  state.labels = placeLabels(state.network, state.positions);
  drawTopology();
  await refreshAll();
  let busy = false;
  // EventSource cannot send the Authorization header: it connects with a ticket valid for a minute, and takes
  // a fresh one whenever the stream drops.
  async function follow() {
    let ticket;
    try { ticket = await api("/api/events/ticket", { method: "POST" }); } catch (e) { setTimeout(follow, 5000); return; }
    const events = new EventSource(`/api/events?ticket=${encodeURIComponent(ticket.ticket)}`);
    events.addEventListener("tick", async () => {
      if (busy) return;
      busy = true;
      try { await refreshAll(); } finally { busy = false; }
    });
    events.onerror = () => { events.close(); setTimeout(follow, 2000); };
  }
  follow();
}

document.getElementById("login-form").addEventListener("submit", event => {
  event.preventDefault();
  localStorage.setItem("netpilot-token", document.getElementById("token-input").value.trim());
  start();
});
start();
