// netpilot dashboard: reads the REST API with the bearer token, follows the loop over Server-Sent Events.
"use strict";

const state = { token: null, me: null, network: null, positions: {}, selectedLink: null, selectedChange: null,
                pinned: false };

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
  if (!response.ok) throw new Error(body.detail || response.statusText);
  return body;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElementNS(tag === "svg" || attrs.svg ? "http://www.w3.org/2000/svg" : "http://www.w3.org/1999/xhtml", tag);
  for (const [k, v] of Object.entries(attrs)) if (k !== "svg") node.setAttribute(k, v);
  for (const c of children) node.append(c);
  return node;
}
const svg = (tag, attrs) => el(tag, { ...attrs, svg: true });

function colour(u, up) {
  if (!up) return "#999";
  if (u > 0.9) return "#d62828";
  if (u > 0.5) return "#e0a800";
  return "#2e9e4f";
}

function showLogin(message) {
  document.getElementById("login").hidden = false;
  document.getElementById("app").hidden = true;
  document.getElementById("login-error").textContent = message || "";
}

// --- topology ------------------------------------------------------------------------------------------------

function layout(network) {
  const placed = network.nodes.filter(n => n.lat !== null && n.kind === "router");
  const lats = placed.map(n => n.lat), lons = placed.map(n => n.lon);
  const [minLat, maxLat, minLon, maxLon] = [Math.min(...lats), Math.max(...lats), Math.min(...lons), Math.max(...lons)];
  const pos = {};
  for (const n of placed) {
    pos[n.id] = [40 + 920 * (n.lon - minLon) / Math.max(1e-9, maxLon - minLon),
                 600 - 560 * (n.lat - minLat) / Math.max(1e-9, maxLat - minLat)];
  }
  // Nodes without a position (cells, edge sites) circle their router.
  const attached = {};
  for (const l of network.links) {
    if (pos[l.source] && !pos[l.target]) (attached[l.source] ||= new Set()).add(l.target);
  }
  for (const [router, set] of Object.entries(attached)) {
    const list = [...set].filter(id => !pos[id]);
    list.forEach((id, i) => {
      const a = 2 * Math.PI * i / list.length;
      pos[id] = [pos[router][0] + 16 * Math.cos(a), pos[router][1] + 16 * Math.sin(a)];
    });
  }
  network.nodes.forEach((n, i) => { pos[n.id] ||= [20 + (i * 37) % 960, 620]; });
  return pos;
}

function drawTopology() {
  const root = document.getElementById("topology");
  root.replaceChildren();
  const seen = new Set();
  for (const l of state.network.links) {
    const key = [l.source, l.target].sort().join("|");
    const [a, b] = [state.positions[l.source], state.positions[l.target]];
    const line = svg("line", { x1: a[0], y1: a[1], x2: b[0], y2: b[1], "stroke-width": 3, stroke: "#2e9e4f",
                               "data-link": l.index, "data-pair": key });
    line.append(svg("title", {}));
    line.addEventListener("click", () => { state.selectedLink = l.index; refreshSeries(); });
    if (!seen.has(key)) root.append(line); else line.dataset.hidden = "1";
    seen.add(key);
  }
  for (const n of state.network.nodes) {
    const [x, y] = state.positions[n.id];
    root.append(svg("circle", { cx: x, cy: y, r: n.kind === "router" ? 6 : 2.5, class: n.kind }));
    if (n.kind === "router") { const t = svg("text", { x: x + 7, y: y - 5 }); t.textContent = n.id; root.append(t); }
  }
}

function paintTopology(s) {
  // Per node pair, the busier direction colours the line.
  const worst = {};
  state.network.links.forEach((l, i) => {
    const key = [l.source, l.target].sort().join("|");
    const u = s.utilisation[i] ?? 0, up = s.link_up[i] ?? true;
    if (!(key in worst) || u > worst[key].u || !up) worst[key] = { u, up, id: l.id };
  });
  for (const line of document.querySelectorAll("#topology line")) {
    const w = worst[line.dataset.pair];
    if (!w) continue;
    line.setAttribute("stroke", colour(w.u, w.up));
    line.setAttribute("stroke-width", 2 + 4 * Math.min(1.2, w.u));
    line.firstChild.textContent = `${w.id}: ${(100 * w.u).toFixed(0)} %${w.up ? "" : " (down)"}`;
  }
}

// --- series with forecast band -------------------------------------------------------------------------------

async function refreshSeries() {
  if (state.selectedLink === null) return;
  const link = state.network.links[state.selectedLink];
  const data = await api(`/api/telemetry?entity=${encodeURIComponent("link:" + link.id)}`);
  document.getElementById("series-name").textContent = link.id;
  const root = document.getElementById("series");
  root.replaceChildren();
  const values = data.values.slice(-120);
  const f = data.forecast;
  const future = f ? f.mean.length : 0;
  const n = values.length + future;
  const all = values.concat(f ? f.upper : []).concat([1.0]);
  const top = Math.max(...all) * 1.05;
  const x = i => 30 + 560 * i / Math.max(1, n - 1), y = v => 200 - 185 * v / top;
  root.append(svg("line", { x1: 30, x2: 590, y1: y(0.9), y2: y(0.9), stroke: "#d62828", "stroke-dasharray": "4 3" }));
  if (f) {
    const upper = f.upper.map((v, i) => `${x(values.length + i)},${y(v)}`);
    const lower = f.lower.map((v, i) => `${x(values.length + i)},${y(Math.max(0, v))}`).reverse();
    root.append(svg("polygon", { points: upper.concat(lower).join(" "), fill: "#7b3fe455", class: "forecast-band" }));
    root.append(svg("polyline", { points: f.mean.map((v, i) => `${x(values.length + i)},${y(v)}`).join(" "),
                                  fill: "none", stroke: "#7b3fe4", "stroke-dasharray": "3 2" }));
  }
  root.append(svg("polyline", { points: values.map((v, i) => `${x(i)},${y(v)}`).join(" "), fill: "none",
                                stroke: "#1d2330", "stroke-width": 1.5, class: "measured" }));
  const label = svg("text", { x: 32, y: 12 });
  label.textContent = `now ${(100 * (values.at(-1) ?? 0)).toFixed(0)} %` + (f ? `, forecast peak ${(100 * f.peak).toFixed(0)} % (${f.model})` : "");
  root.append(label);
}

// --- incidents, changes, audit --------------------------------------------------------------------------------

async function refreshIncidents() {
  const incidents = await api("/api/incidents");
  const root = document.getElementById("incidents");
  root.replaceChildren(...incidents.slice(0, 20).map(i => {
    const causes = i.causes.slice(0, 3).map((c, k) => `${k + 1}. ${c.kind} ${c.target} (${c.score.toFixed(2)})`).join("; ");
    return el("li", { class: "incident", "data-id": i.id },
              el("b", {}, `${i.id} `), `${i.detected_at.slice(11, 16)} — `, causes || "localising…");
  }));
}

async function refreshChanges() {
  const changes = await api("/api/changes?limit=50");
  const root = document.getElementById("changes");
  root.replaceChildren(...changes.slice(0, 30).map(c => {
    const item = el("li", { "data-id": c.id, class: c.id === state.selectedChange ? "selected" : "" },
                    el("span", { class: `state ${c.state}` }, c.state), ` ${c.id} by ${c.proposer}: ${c.why.slice(0, 90)}`);
    item.addEventListener("click", () => { state.selectedChange = c.id; state.pinned = true; refreshChanges(); });
    return item;
  }));
  // Until the person picks one, follow the change waiting for a decision (the loop may supersede proposals).
  const waiting = changes.find(c => c.state === "verified");
  if (!state.pinned && waiting) state.selectedChange = waiting.id;
  if (state.selectedChange) await showChange(state.selectedChange);
}

async function showChange(id) {
  const c = await api(`/api/changes/${id}`);
  const root = document.getElementById("change-detail");
  const checks = (c.verification?.checks || []).map(k =>
    el("li", { class: k.ok ? "ok" : "fail" }, `${k.ok ? "✓" : "✗"} ${k.name}: ${k.detail}`));
  const diff = c.diff.map(d => `${d.link}: ${d.field} ${d.before} → ${d.after}`).join("\n");
  const config = Object.entries(c.config_diff).map(([dev, text]) => `# ${dev}\n${text}`).join("\n");
  const outcomes = c.previous_outcomes.map(o =>
    `${o.change}: MLU ${o.mlu_before.toFixed(2)} → predicted ${o.predicted_mlu.toFixed(2)}, measured ${o.measured_mlu === null ? "pending" : o.measured_mlu.toFixed(2)}`).join("\n");
  const buttons = el("p", {});
  if (c.state === "verified" && state.me.role === "approver") {
    const approve = el("button", { id: "approve", class: "approve" }, "Approve");
    const reject = el("button", { id: "reject" }, "Reject");
    approve.addEventListener("click", () => decide(id, "approve"));
    reject.addEventListener("click", () => decide(id, "reject"));
    buttons.append(approve, reject);
  }
  if ((c.state === "checking" || c.state === "done") && state.me.role === "approver") {
    const back = el("button", { id: "rollback" }, "Roll back");
    back.addEventListener("click", () => decide(id, "rollback"));
    buttons.append(back);
  }
  root.replaceChildren(
    el("h3", {}, `Change ${c.id} `, el("span", { class: `state ${c.state}`, id: "change-state" }, c.state)),
    el("p", {}, c.why), buttons,
    el("h4", {}, "Diff"), el("pre", { id: "diff" }, diff || "(none)"),
    el("h4", {}, "Verification"), el("ul", { id: "checks" }, ...checks),
    el("h4", {}, "Rendered FRR config"), el("pre", {}, config || `(${c.config_note || "no device changes"})`),
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

async function refreshAudit() {
  const audit = await api("/api/audit?limit=40");
  document.getElementById("audit-status").textContent = audit.intact ? "hash chain intact" : `BROKEN: ${audit.detail}`;
  document.getElementById("audit").replaceChildren(...audit.entries.reverse().map(e =>
    el("li", {}, `${e.at.slice(11, 19)} ${e.actor} ${e.action} ${e.change_id}`)));
}

async function refreshState() {
  const s = await api("/api/state");
  document.getElementById("mlu").textContent = `${(100 * s.mlu).toFixed(0)} %`;
  document.getElementById("mlu").dataset.value = s.mlu;
  document.getElementById("clock").textContent = s.ts ? s.ts.slice(0, 16).replace("T", " ") : "–";
  document.getElementById("latency").textContent = s.latency_ms === null ? "–" : s.latency_ms.toFixed(1);
  if (s.utilisation.length) {
    paintTopology(s);
    if (state.selectedLink === null) state.selectedLink = s.utilisation.indexOf(Math.max(...s.utilisation));
  }
}

async function refreshAll() {
  try {
    await refreshState();
    await Promise.all([refreshSeries(), refreshIncidents(), refreshChanges(), refreshAudit()]);
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
  state.positions = layout(state.network);
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

document.getElementById("login-button").addEventListener("click", () => {
  localStorage.setItem("netpilot-token", document.getElementById("token-input").value.trim());
  start();
});
start();
