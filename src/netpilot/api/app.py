"""The REST API and dashboard server: typed endpoints over a live autopilot, bearer tokens with roles, live
updates over Server-Sent Events, and Prometheus metrics for netpilot itself."""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
from collections import Counter as Tally
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, PlainTextResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from pydantic import BaseModel, Field

from netpilot.autopilot.live import LiveAutopilot
from netpilot.autopilot.scenario import Scenario, compare
from netpilot.change.drivers.frr.render import config_diff
from netpilot.change.intents import Intent, IntentList, apply_intents
from netpilot.change.verify import verify_change
from netpilot.change.workflow import STATES as CHANGE_STATES
from netpilot.change.workflow import WorkflowError, twin_diff
from netpilot.errors import InputError
from netpilot.telemetry.sim.faults import Fault, check_faults
from netpilot.telemetry.sim.simulator import DEFAULT_START

Role = Literal["viewer", "operator", "approver"]
RANK = {"viewer": 0, "operator": 1, "approver": 2}
WEB = Path(__file__).resolve().parents[1] / "web" / "static"


class Principal(BaseModel):
    """Who holds a token: a name for the audit log and a role."""

    user: str
    role: Role


def make_tokens(users: dict[str, Role]) -> dict[str, Principal]:
    """Fresh random tokens, one per user."""
    return {secrets.token_urlsafe(18): Principal(user=u, role=r) for u, r in users.items()}


# --- response and request models --------------------------------------------------------------------------------

class NodeOut(BaseModel):
    id: str
    kind: str
    lat: float | None = None
    lon: float | None = None


class LinkOut(BaseModel):
    index: int
    id: str
    source: str
    target: str
    capacity_mbps: float
    metric: int


class NetworkOut(BaseModel):
    name: str
    nodes: list[NodeOut]
    links: list[LinkOut]


class StateOut(BaseModel):
    ts: str | None
    minute: float
    ticks: int
    mlu: float
    utilisation: list[float] = Field(description="Per link, in the network's link order; 0 when down.")
    link_up: list[bool]
    metric: list[int]
    beliefs: list[str]
    latency_ms: float | None
    errors: list[str]
    congestion: float = Field(description="Utilisation above which the autopilot acts (1 = full).")


class SeriesOut(BaseModel):
    entity: str
    metric: Literal["utilisation"]
    timestamps: list[str]
    values: list[float]
    forecast: dict[str, Any] | None = None


class IncidentOut(BaseModel):
    id: str
    detected_at: str
    minute: float
    alarms: list[str]
    causes: list[dict]
    localised_at: str | None


class ChangeOut(BaseModel):
    id: str
    state: str
    proposer: str
    approver: str | None
    why: str
    intents: list[dict]
    created: str
    updated: str


class ChangeDetail(ChangeOut):
    diff: list[dict]
    config_diff: dict[str, str] = Field(description="Per device, the unified diff of its rendered FRR config.")
    config_note: str = Field(default="", description="Why there is no rendered diff, when there is none.")
    verification: dict | None
    evidence: dict
    audit: list[dict]
    previous_outcomes: list[dict] = Field(description="Predicted vs measured effect of the changes applied "
                                                      "before this one, for the approver.")


class Decision(BaseModel):
    why: str = Field(default="", max_length=2000)


class Proposal(BaseModel):
    intents: list[Intent] = Field(min_length=1, max_length=100)
    why: str = Field(min_length=1, max_length=2000)


class ProposalOut(BaseModel):
    id: str
    state: str
    verification: dict


class ScenarioRequest(BaseModel):
    """A scenario on the network this server runs: how long, which seed and start time, and the faults."""

    hours: float = Field(gt=0, le=24, description="Length of the run (the server may allow less).")
    step_seconds: float = Field(default=60.0, ge=10, le=3600)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    start: datetime = Field(default=DEFAULT_START, description="Simulated start (UTC); sets the daily load.")
    congestion: float = Field(default=0.9, gt=0, le=10)
    faults: list[Fault] = Field(default_factory=list, max_length=50)


class ScenarioRunOut(BaseModel):
    id: str
    state: Literal["running", "done", "failed"]
    progress: float = Field(description="Share of the steps replayed so far, both runs together.")
    requested_by: str
    request: ScenarioRequest
    result: dict | None = Field(default=None, description="What `netpilot scenario run` writes: faults detected, "
                                                          "overload for the autopilot and static routing, changes, "
                                                          "decision latency.")
    error: str | None = None


class Me(BaseModel):
    user: str
    role: Role


# --- authentication ------------------------------------------------------------------------------------------------

_bearer = HTTPBearer(auto_error=False)


def _principal(request: Request,
               credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
               token: Annotated[str | None, Query(description="For EventSource, which cannot send headers.")]
               = None) -> Principal:
    value = credentials.credentials if credentials is not None else token
    if not value:
        raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    found = request.app.state.tokens.get(value)
    if found is None:
        raise HTTPException(401, "unknown token", headers={"WWW-Authenticate": "Bearer"})
    return found


def _role(minimum: Role):
    def check(who: Annotated[Principal, Depends(_principal)]) -> Principal:
        if RANK[who.role] < RANK[minimum]:
            article = "an" if who.role[0] in "aeiou" else "a"
            raise HTTPException(403, f"{who.user} is {article} {who.role}; this needs {minimum}")
        return who
    return check


Viewer = Annotated[Principal, Depends(_role("viewer"))]
Operator = Annotated[Principal, Depends(_role("operator"))]
Approver = Annotated[Principal, Depends(_role("approver"))]


# --- the app -----------------------------------------------------------------------------------------------------

def create_app(live: LiveAutopilot, tokens: dict[str, Principal], *, max_scenario_hours: float = 6.0) -> FastAPI:
    """The API over ``live``. Scenario runs replay on a copy of the live network in a background thread, one at a
    time, each at most ``max_scenario_hours`` long."""
    app = FastAPI(title="netpilot", version="0.1", description="The autopilot's network, telemetry, forecasts, "
                  "incidents and change queue. Send `Authorization: Bearer <token>`; roles: viewer (read), "
                  "operator (propose), approver (approve, reject, roll back; never their own proposal).")
    registry = CollectorRegistry()
    requests = Counter("netpilot_http_requests", "HTTP requests served", ["method", "status"], registry=registry)
    ticks = Counter("netpilot_ticks", "Telemetry ticks the loop has observed", registry=registry)
    latency = Histogram("netpilot_decision_latency_seconds", "Sample in to decision out, per tick",
                        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5), registry=registry)
    tick_seconds = Histogram("netpilot_tick_seconds", "The whole tick, applying and checking changes included",
                             buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5), registry=registry)
    alarms_total = Counter("netpilot_alarms", "KPI alarms raised, summed over ticks", registry=registry)
    # The domain's state, read at each scrape.
    mlu_gauge = Gauge("netpilot_mlu_ratio", "Maximum utilisation of the links that are up (1 = full)",
                      registry=registry)
    congested = Gauge("netpilot_links_congested", "Links above the autopilot's congestion threshold",
                      registry=registry)
    threshold = Gauge("netpilot_congestion_threshold_ratio", "Utilisation above which the autopilot acts",
                      registry=registry)
    links_down = Gauge("netpilot_links_down", "Links measured down", registry=registry)
    alarms_now = Gauge("netpilot_alarms_active", "KPI alarms on the latest tick", registry=registry)
    incidents = Gauge("netpilot_incidents", "Incidents detected since the loop started", registry=registry)
    incidents_open = Gauge("netpilot_incidents_open", "Incidents detected but not localised yet", registry=registry)
    believed = Gauge("netpilot_believed_faults", "Faults the twin believes present now (localised causes)",
                     registry=registry)
    changes_by_state = Gauge("netpilot_changes", "Changes in the workflow, by state", ["state"], registry=registry)
    counted = {"ticks": 0}
    app.state.tokens = tokens

    @app.middleware("http")
    async def count_requests(request: Request, call_next):
        response = await call_next(request)
        requests.labels(request.method, str(response.status_code)).inc()
        return response

    store = live.changes
    pilot = live.autopilot
    network = live.network

    def change_out(record) -> dict:
        return {k: getattr(record, k) for k in ChangeOut.model_fields}

    def get_change(change_id: str):
        try:
            return store.get(change_id)
        except WorkflowError as exc:
            raise HTTPException(404, str(exc)) from None

    def workflow_call(func, *args):
        try:
            with live.lock:
                func(*args)
        except WorkflowError as exc:
            raise HTTPException(403 if "two-person" in str(exc) else 409, str(exc)) from None

    @app.get("/api/me", response_model=Me)
    def me(who: Viewer) -> Me:
        return Me(user=who.user, role=who.role)

    @app.get("/api/network", response_model=NetworkOut)
    def get_network(who: Viewer) -> NetworkOut:
        running = live.autopilot.driver.running()
        return NetworkOut(name=network.name or "network",
                          nodes=[NodeOut(id=n.id, kind=n.kind, lat=n.location.lat if n.location else None,
                                         lon=n.location.lon if n.location else None) for n in network.nodes],
                          links=[LinkOut(index=i, id=lk.id, source=lk.source, target=lk.target,
                                         capacity_mbps=lk.capacity, metric=running.links[i].metric)
                                 for i, lk in enumerate(network.links)])

    @app.get("/api/state", response_model=StateOut)
    def get_state(who: Viewer) -> StateOut:
        with live.lock:
            r, tick = live.latest, live.latest_tick
            metric = live.autopilot.driver.running().arrays().metric.tolist()
            if r is None:
                return StateOut(ts=None, minute=0.0, ticks=0, mlu=0.0, utilisation=[], link_up=[], metric=metric,
                                beliefs=[], latency_ms=None, errors=live.errors[-5:], congestion=pilot.congestion)
            up = r.link_up
            return StateOut(ts=r.ts.isoformat(), minute=r.minute, ticks=live.ticks,
                            mlu=float(r.link_utilisation[up].max(initial=0.0)),
                            utilisation=[float(u) if ok else 0.0 for u, ok in zip(r.link_utilisation, up)],
                            link_up=[bool(x) for x in up], metric=metric, beliefs=sorted(pilot.beliefs),
                            latency_ms=tick.latency_ms if tick else None, errors=live.errors[-5:],
                            congestion=pilot.congestion)

    @app.get("/api/telemetry", response_model=SeriesOut)
    def get_telemetry(who: Viewer, entity: str = Query(description="link:A->B"),
                      metric: Literal["utilisation", "utilization"] = Query(
                          "utilisation", description="utilisation (utilization, the US spelling, is the same)"),
                      ) -> SeriesOut:
        link_id = entity.removeprefix("link:")
        index = {lk.id: i for i, lk in enumerate(network.links)}
        if link_id not in index:
            raise HTTPException(404, f"no link {link_id!r}; entities look like link:A->B")
        times, values = live.series(index[link_id])
        return SeriesOut(entity=f"link:{link_id}", metric="utilisation", timestamps=times, values=values,
                         forecast=pilot.forecast.get(link_id))

    @app.get("/api/forecasts")
    def get_forecasts(who: Viewer) -> dict[str, dict]:
        """Utilisation forecasts of the busiest links: mean, 80 % band, chosen model, P(congested)."""
        with live.lock:
            return dict(pilot.forecast)

    @app.get("/api/incidents", response_model=list[IncidentOut])
    def get_incidents(who: Viewer) -> list[IncidentOut]:
        with live.lock:
            return [IncidentOut(**asdict(i)) for i in reversed(pilot.incidents)]

    @app.get("/api/changes", response_model=list[ChangeOut])
    def list_changes(who: Viewer, state: str | None = None) -> list[ChangeOut]:
        return [ChangeOut(**change_out(c)) for c in reversed(store.list(state))]

    @app.get("/api/changes/{change_id}", response_model=ChangeDetail)
    def show_change(change_id: str, who: Viewer) -> ChangeDetail:
        record = get_change(change_id)
        rendered, note = {}, "applied already: the stored diff shows what it changed"
        if record.state in ("proposed", "verified", "approved"):
            running = live.autopilot.driver.running()
            try:
                after = apply_intents(running, list(IntentList.model_validate(record.intents).root))
                rendered, note = config_diff(running, after), ""
            except InputError as exc:  # the network moved on since the proposal: the stored diff stands
                note = f"no longer applies to the running network: {exc}"
        outcomes = [pilot.outcome(a) for a in pilot.applied if a.change_id != change_id][-5:]
        return ChangeDetail(**change_out(record), diff=record.diff, config_diff=rendered, config_note=note,
                            verification=record.verification, evidence=store.annotations(change_id),
                            audit=store.audit(change_id), previous_outcomes=outcomes)

    @app.post("/api/changes", response_model=ProposalOut, status_code=201)
    def propose(body: Proposal, who: Operator) -> ProposalOut:
        """Propose intents by hand; they are verified on the twin like the autopilot's own."""
        with live.lock:
            before = live.autopilot.believed_network()
            try:
                after = apply_intents(before, list(body.intents))
            except InputError as exc:
                raise HTTPException(422, str(exc)) from None
            report = verify_change(before, after, max_utilisation=pilot.verify_limit)
            change_id = store.propose([i.model_dump() for i in body.intents], who.user, body.why,
                                      twin_diff(before, after))
            state = store.record_verification(change_id, report.as_dict())
        return ProposalOut(id=change_id, state=state, verification=report.as_dict())

    @app.post("/api/changes/{change_id}/approve", response_model=ChangeOut)
    def approve(change_id: str, who: Approver) -> ChangeOut:
        get_change(change_id)
        workflow_call(store.approve, change_id, who.user)
        return ChangeOut(**change_out(store.get(change_id)))

    @app.post("/api/changes/{change_id}/reject", response_model=ChangeOut)
    def reject(change_id: str, body: Decision, who: Approver) -> ChangeOut:
        get_change(change_id)
        workflow_call(store.reject, change_id, who.user, body.why or "rejected in the dashboard")
        return ChangeOut(**change_out(store.get(change_id)))

    @app.post("/api/changes/{change_id}/rollback", response_model=ChangeOut)
    def rollback(change_id: str, who: Approver, body: Decision | None = None) -> ChangeOut:
        """Roll back a change: one still in its check window from the driver's journal, one the loop applied
        and confirmed by reverting its metrics (commit-confirmed)."""
        record = get_change(change_id)
        why = (body.why if body else "") or "rolled back in the dashboard"
        if record.state == "checking":
            with live.lock:
                live.autopilot.rollback_in_flight(who.user)
        elif record.state == "done":
            workflow_call(live.autopilot.revert, change_id, who.user, why)
        else:
            raise HTTPException(409, f"change {change_id} is {record.state}; only a change being checked or done "
                                     "can be rolled back")
        return ChangeOut(**change_out(store.get(change_id)))

    runs: dict[str, dict] = {}

    def run_out(run: dict) -> ScenarioRunOut:
        return ScenarioRunOut(**{k: run[k] for k in ScenarioRunOut.model_fields})

    @app.post("/api/scenarios", response_model=ScenarioRunOut, status_code=202)
    def start_scenario(body: ScenarioRequest, who: Operator) -> ScenarioRunOut:
        """Replay a scenario on the live network with the autopilot and with static routing, in the background;
        poll ``GET /api/scenarios/{id}`` for the result."""
        if body.hours > max_scenario_hours:
            raise HTTPException(422, f"hours: this server runs scenarios of at most {max_scenario_hours:g} h")
        if any(r["state"] == "running" for r in runs.values()):
            raise HTTPException(409, "a scenario run is in progress; one runs at a time")
        try:  # every fault names a link or node of this network and starts within the run
            check_faults(list(body.faults), network, body.hours * 60.0)
        except InputError as exc:
            raise HTTPException(422, str(exc)) from None
        scenario = Scenario(name=f"api-{len(runs) + 1}", network=Path(network.name or "live"), **body.model_dump())
        run = {"id": secrets.token_hex(6), "state": "running", "progress": 0.0, "requested_by": who.user,
               "request": body, "result": None, "error": None}
        runs[run["id"]] = run

        def progress(which: str, i: int, n: int) -> None:
            run["progress"] = (i + (n if which == "static" else 0)) / (2 * n)

        def work() -> None:
            try:
                run["result"] = compare(scenario, progress=progress, network=network)
                run["state"] = "done"
            except Exception as exc:  # a failed run reports why instead of vanishing with its thread
                run["state"], run["error"] = "failed", f"{type(exc).__name__}: {exc}"

        threading.Thread(target=work, name=f"scenario-{run['id']}", daemon=True).start()
        return run_out(run)

    @app.get("/api/scenarios", response_model=list[ScenarioRunOut])
    def list_scenarios(who: Viewer) -> list[ScenarioRunOut]:
        return [run_out(run) for run in runs.values()]

    @app.get("/api/scenarios/{run_id}", response_model=ScenarioRunOut)
    def show_scenario(run_id: str, who: Viewer) -> ScenarioRunOut:
        if run_id not in runs:
            raise HTTPException(404, f"no scenario run {run_id!r}")
        return run_out(runs[run_id])

    @app.get("/api/audit")
    def audit(who: Viewer, limit: int = Query(default=200, ge=1, le=5000)) -> dict:
        intact, where = store.verify_audit()
        # Each entry also at the simulated time it was written in (sim_at), the clock the rest of the API uses.
        entries = [e | {"sim_at": live.simulated_time(e["at"])} for e in store.audit()[-limit:]]
        return {"intact": intact, "detail": where, "entries": entries}

    @app.get("/api/events")
    async def events(request: Request, who: Viewer) -> StreamingResponse:
        """Server-Sent Events: one `tick` event per loop tick (MLU, incident and change ids, latency)."""
        async def stream():
            seen = live.ticks
            yield "retry: 2000\n\n"
            while not await request.is_disconnected():
                if live.ticks != seen and live.latest_tick is not None:
                    seen = live.ticks
                    yield f"event: tick\ndata: {json.dumps(asdict(live.latest_tick))}\n\n"
                await asyncio.sleep(0.2)
        return StreamingResponse(stream(), media_type="text/event-stream")

    @app.get("/metrics", response_class=PlainTextResponse)
    def metrics() -> PlainTextResponse:
        with live.lock:
            new = pilot.ticks[counted["ticks"]:]
            counted["ticks"] = len(pilot.ticks)
        for t in new:
            ticks.inc()
            latency.observe(t.latency_ms / 1000.0)
            tick_seconds.observe(t.total_ms / 1000.0)
            alarms_total.inc(t.alarms)
        with live.lock:
            latest, tick = live.latest, live.latest_tick
            if latest is not None:
                up = np.asarray(latest.link_up, dtype=bool)
                utilisation = np.asarray(latest.link_utilisation, dtype=float)[up]
                mlu_gauge.set(float(utilisation.max()) if utilisation.size else 0.0)
                congested.set(int((utilisation > pilot.congestion).sum()))
                links_down.set(int((~up).sum()))
            threshold.set(pilot.congestion)
            alarms_now.set(tick.alarms if tick is not None else 0)
            incidents.set(len(pilot.incidents))
            incidents_open.set(sum(1 for i in pilot.incidents if i.localised_at is None))
            believed.set(len(pilot.beliefs))
        counts = Tally(c.state for c in store.list())
        for state in CHANGE_STATES:
            changes_by_state.labels(state).set(counts.get(state, 0))
        return PlainTextResponse(generate_latest(registry).decode(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(WEB / "index.html")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:  # what browsers ask for before they read the page's icon link
        return FileResponse(WEB / "favicon.svg", media_type="image/svg+xml")

    app.mount("/static", StaticFiles(directory=WEB), name="static")
    return app
