"""The REST API and dashboard server: typed endpoints over a live autopilot, bearer tokens with roles (kept
hashed, with an expiry, from the Authorization header only), bounded requests, live updates over Server-Sent
Events (with a short-lived ticket), and Prometheus metrics for netpilot itself."""

from __future__ import annotations

import asyncio
import json
import math
import secrets
import threading
import time
from collections import Counter as Tally
from collections import defaultdict, deque
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from pydantic import BaseModel, ConfigDict, Field

from netpilot.autopilot.live import LiveLoop
from netpilot.change.drivers.frr.render import config_diff
from netpilot.change.identity import normalise, token_hash
from netpilot.change.intents import Intent, IntentList, apply_intents
from netpilot.change.verify import verify_change
from netpilot.change.workflow import STATES as CHANGE_STATES
from netpilot.change.workflow import WorkflowError, twin_diff
from netpilot.errors import InputError
from netpilot.model.faults import Fault, check_faults
from netpilot.model.twin import DEFAULT_START
from netpilot.scenarios.scenario import Scenario, compare

Role = Literal["viewer", "operator", "approver"]
RANK = {"viewer": 0, "operator": 1, "approver": 2}
WEB = Path(__file__).resolve().parents[1] / "web" / "static"


#: Largest request body accepted (413 above): a proposal of 100 intents fits many times over.
MAX_BODY_BYTES = 256 * 1024
TOKEN_TTL = timedelta(hours=12)
TICKET_TTL = timedelta(seconds=60)


class Principal(BaseModel):
    """Who holds a token: a name for the audit log (normalised), a role, and when the token stops working."""

    user: str
    role: Role
    expires: datetime | None = None


def make_tokens(users: dict[str, Role], ttl: timedelta = TOKEN_TTL) -> dict[str, Principal]:
    """Fresh random tokens, one per user, each valid for ``ttl``. The caller hands them out; ``create_app``
    keeps only their hashes."""
    expires = datetime.now(UTC) + ttl
    return {secrets.token_urlsafe(24): Principal(user=normalise(u), role=r, expires=expires)
            for u, r in users.items()}


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
    closed_at: str | None = Field(None, description="When the fault believed from it ended (its KPIs healthy "
                                                     "again); none while it lasts, when nothing was believed from "
                                                     "it, or when the belief was given up or cleared.")


class ChangeOut(BaseModel):
    id: str
    state: str
    proposer: str
    approver: str | None
    why: str
    intents: list[dict]
    created: str
    updated: str
    kinds: list[str] = Field(default_factory=list, description="The intents' kinds, in order (apply_metrics, "
                                                                "set_slices, place_inference, ...).")


class ChangeDetail(ChangeOut):
    diff: list[dict]
    config_diff: dict[str, str] = Field(description="Per device, the unified diff of its rendered FRR config.")
    config_note: str = Field(default="", description="Why there is no rendered diff, when there is none.")
    verification: dict | None
    evidence: dict
    audit: list[dict]
    previous_outcomes: list[dict] = Field(description="Predicted vs measured effect of the changes applied "
                                                      "before this one, for the approver.")


#: Share of a service's requests served within its SLO that counts as the SLO met (issue 28's target).
SLO_TARGET = 0.99
RAN_KINDS = frozenset({"set_slices", "place_inference"})


class RanSliceOut(BaseModel):
    name: str
    share: float = Field(description="Share of the cell's PRBs the running split gives the slice (0..1).")
    demand_prbs: float
    grant_prbs: float = Field(description="PRBs the slice got this tick (at most its demand and its share).")
    guaranteed_prbs: float
    sla_met: bool = Field(description="The slice's share covers min(demand, guarantee).")


class RanCellOut(BaseModel):
    id: str
    prbs: float
    up: bool
    home_site: str = Field(description="The edge site that runs the cell's RAN processing.")
    load: float = Field(description="PRB demand over the cell's PRBs (may pass 1).")
    slices: list[RanSliceOut]


class RanSiteOut(BaseModel):
    id: str
    up: bool
    gpus: float
    ran_gpus: float = Field(description="GPUs the RAN processing of its cells takes now.")
    ran_reserved_gpus: float = Field(description="GPUs kept for the RAN by the running placement.")
    ai_powered_gpus: float = Field(description="GPUs powered for AI inference (0 while the site is down).")
    ai_busy_gpus: float = Field(description="GPU-seconds per second AI inference keeps busy.")
    models: list[str] = Field(description="Inference models loaded.")
    requests_per_s: float


class RanServiceOut(BaseModel):
    name: str
    slo_ms: float = Field(description="Round trip over the network plus response time, at most.")
    requests_per_s: float = Field(description="What the cells' users send.")
    unserved_per_s: float
    slo_met_per_s: float = Field(description="Requests per second served within the SLO.")
    slo_met_share: float
    slo_met: bool = Field(description="slo_met_share at least slo_target.")
    reachable_share: float = Field(description="Share of the requests sent from cells that some edge site up "
                                               "can answer within the SLO (round trip over the network plus the "
                                               "response time at the lowest utilisation cap the placement may "
                                               "run a site at, min_utilisation): what any placement could serve "
                                               "within it.")


class RanOut(BaseModel):
    ts: str | None = Field(description="Simulated time of the tick (the clock of /api/state).")
    cells_total: int
    cells_up: int
    sla_met_share: float = Field(description="Share of the cell-slices of cells up whose SLA is met this tick.")
    slo_target: float
    step_ms: float | None = Field(description="Wall time of the RAN part's last tick (telemetry, planners, "
                                              "verification, workflow), ms.")
    cells: list[RanCellOut] = Field(description="The busiest cells (highest load first).")
    sites: list[RanSiteOut]
    services: list[RanServiceOut]


class _Request(BaseModel):
    """Request bodies: unknown fields refused, NaN and infinities refused (422)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Decision(_Request):
    why: str = Field(default="", max_length=2000)


class Proposal(_Request):
    intents: list[Intent] = Field(min_length=1, max_length=100)
    why: str = Field(min_length=1, max_length=2000)


class ProposalOut(BaseModel):
    id: str
    state: str
    verification: dict


class ScenarioRequest(_Request):
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
    expires: datetime | None = None


class Ticket(BaseModel):
    ticket: str = Field(description="Pass as `?ticket=` to `GET /api/events` (EventSource cannot send headers).")
    expires: datetime


# --- authentication ------------------------------------------------------------------------------------------------

_bearer = HTTPBearer(auto_error=False)


def _holder(book: dict[str, Principal], value: str | None, what: str) -> Principal:
    if not value:
        raise HTTPException(401, f"missing {what}", headers={"WWW-Authenticate": "Bearer"})
    found = book.get(token_hash(value))
    if found is None:
        raise HTTPException(401, f"unknown {what}", headers={"WWW-Authenticate": "Bearer"})
    if found.expires is not None and found.expires <= datetime.now(UTC):
        raise HTTPException(401, f"expired {what}", headers={"WWW-Authenticate": "Bearer"})
    return found


def _principal(request: Request,
               credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Principal:
    # The header only: a token in a URL ends up in logs, history and Referer headers.
    return _holder(request.app.state.tokens, credentials.credentials if credentials is not None else None,
                   "bearer token")


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

def create_app(live: LiveLoop, tokens: dict[str, Principal], *, max_scenario_hours: float = 6.0,
               proposals_per_minute: int = 20) -> FastAPI:
    """The API over ``live``. Scenario runs replay on a copy of the live network in a background thread, one at a
    time, each at most ``max_scenario_hours`` long. Each user may propose ``proposals_per_minute`` changes a
    minute (429 above)."""
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
    app.state.tokens = {token_hash(t): p for t, p in tokens.items()}  # kept hashed
    app.state.tickets = {}
    app.add_middleware(_BoundedJson, limit=MAX_BODY_BYTES)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # The offending input is not echoed: it may be NaN or a lone surrogate, which JSON cannot carry.
        errors = [{"loc": list(e.get("loc", ())), "msg": _printable(str(e.get("msg", ""))),
                   "type": e.get("type", "")} for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.middleware("http")
    async def count_requests(request: Request, call_next):
        response = await call_next(request)
        requests.labels(request.method, str(response.status_code)).inc()
        return response

    store = live.changes
    pilot = live.autopilot
    network = live.network

    def change_out(record) -> dict:
        return {k: getattr(record, k) for k in ChangeOut.model_fields if k != "kinds"} | \
            {"kinds": [str(i.get("intent", "")) for i in record.intents]}

    def is_ran(record) -> bool:
        return bool(record.intents) and all(i.get("intent") in RAN_KINDS for i in record.intents)

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

    from netpilot.api.assistant import assistant_router
    app.include_router(assistant_router(live))

    @app.get("/api/me", response_model=Me)
    def me(who: Viewer) -> Me:
        return Me(user=who.user, role=who.role, expires=who.expires)

    @app.post("/api/events/ticket", response_model=Ticket)
    def events_ticket(who: Viewer) -> Ticket:
        """A ticket for the event stream, valid for a minute (kept hashed like tokens)."""
        now = datetime.now(UTC)
        for key in [k for k, p in app.state.tickets.items() if p.expires <= now]:
            del app.state.tickets[key]
        ticket = secrets.token_urlsafe(24)
        expires = min(now + TICKET_TTL, who.expires or now + TICKET_TTL)
        app.state.tickets[token_hash(ticket)] = Principal(user=who.user, role=who.role, expires=expires)
        return Ticket(ticket=ticket, expires=expires)

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

    @app.get("/api/ran", response_model=RanOut, responses={404: {"description": "No AI-RAN part runs."}})
    def get_ran(who: Viewer, cells: int = Query(default=12, ge=0, le=100_000,
                                                description="How many of the busiest cells.")) -> RanOut:
        """The AI-RAN part of the loop at its latest tick: per cell (the busiest) the slice split, PRB demand and
        grant and whether each slice's SLA is met; per edge site the GPUs the RAN takes and keeps, the GPUs
        powered and busy for AI, the models loaded; per service requests, unserved and SLO met."""
        with live.lock:
            ran = live.ran
            if ran is None:
                raise HTTPException(404, "no AI-RAN part runs in this loop (the network has no cells and edge "
                                         "sites, or the RAN was left off)")
            return _ran_out(ran, live.latest.ts.isoformat() if live.latest is not None else None, cells)

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
    def list_changes(who: Viewer, state: Literal[CHANGE_STATES] | None = None,  # type: ignore[valid-type]
                     limit: int = Query(default=50, ge=1, le=500, description="Newest first, this many."),
                     offset: int = Query(default=0, ge=0, le=10**9)) -> list[ChangeOut]:
        return [ChangeOut(**change_out(c)) for c in store.list(state, limit=limit, offset=offset, newest_first=True)]

    @app.get("/api/changes/{change_id}", response_model=ChangeDetail)
    def show_change(change_id: str, who: Viewer) -> ChangeDetail:
        record = get_change(change_id)
        rendered, note = {}, "applied already: the stored diff shows what it changed"
        if is_ran(record):
            note = "a RAN change (slice split, inference placement): the RAN driver applies it, no router config"
        elif record.state in ("proposed", "verified", "approved"):
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

    proposals: dict[str, deque[float]] = defaultdict(deque)
    proposals_lock = threading.Lock()

    @app.post("/api/changes", response_model=ProposalOut, status_code=201,
              responses={429: {"description": "Too many proposals from this user in the last minute."}})
    def propose(body: Proposal, who: Operator) -> ProposalOut:
        """Propose intents by hand; they are verified on the twin like the autopilot's own."""
        with proposals_lock:
            recent = proposals[who.user]
            now = time.monotonic()
            while recent and recent[0] < now - 60.0:
                recent.popleft()
            if len(recent) >= proposals_per_minute:
                raise HTTPException(429, f"{who.user} proposed {len(recent)} changes in the last minute; "
                                         f"at most {proposals_per_minute}", headers={"Retry-After": "60"})
            recent.append(now)
        with live.lock:  # a snapshot of the network as the loop believes it; verification runs without the lock
            before = live.autopilot.believed_network()
            settings = pilot.settings.verification.exact()
        try:
            after = apply_intents(before, list(body.intents))
        except InputError as exc:
            raise HTTPException(422, _printable(str(exc))) from None
        report = verify_change(before, after, settings)
        change_id = store.propose([i.model_dump() for i in body.intents], who.user, body.why,
                                  twin_diff(before, after))
        state = store.record_verification(change_id, report.as_dict())
        return ProposalOut(id=change_id, state=state, verification=report.as_dict())

    @app.post("/api/changes/{change_id}/approve", response_model=ChangeOut)
    def approve(change_id: str, who: Approver) -> ChangeOut:
        get_change(change_id)
        with live.lock:  # between ticks: a loop planning this tick must not see its proposal change state midway
            workflow_call(store.approve, change_id, who.user)
        return ChangeOut(**change_out(store.get(change_id)))

    @app.post("/api/changes/{change_id}/reject", response_model=ChangeOut)
    def reject(change_id: str, body: Decision, who: Approver) -> ChangeOut:
        get_change(change_id)
        with live.lock:
            workflow_call(store.reject, change_id, who.user, body.why or "rejected in the dashboard")
        return ChangeOut(**change_out(store.get(change_id)))

    @app.post("/api/changes/{change_id}/rollback", response_model=ChangeOut)
    def rollback(change_id: str, who: Approver, body: Decision | None = None) -> ChangeOut:
        """Roll back a change: one still in its check window from the driver's journal, one the loop applied
        and confirmed by reverting its metrics (commit-confirmed)."""
        record = get_change(change_id)
        why = (body.why if body else "") or "rolled back in the dashboard"
        if is_ran(record):
            if record.state != "checking":
                raise HTTPException(409, f"change {change_id} is {record.state}; a RAN change can be rolled back "
                                         "while it is being checked (the loop's next plan supersedes one done)")
            with live.lock:
                undone = live.ran is not None and live.ran.rollback_in_flight(who.user, change_id, why)
            if not undone:
                raise HTTPException(409, f"change {change_id} is not a RAN change being checked")
        elif record.state == "checking":
            with live.lock:
                undone = live.autopilot.rollback_in_flight(who.user, change_id)
            if undone is None:
                raise HTTPException(409, f"change {change_id} is not the change being checked; nothing to roll back")
        elif record.state == "done":
            workflow_call(live.autopilot.revert, change_id, who.user, why)
        else:
            raise HTTPException(409, f"change {change_id} is {record.state}; only a change being checked or done "
                                     "can be rolled back")
        return ChangeOut(**change_out(store.get(change_id)))

    runs: dict[str, dict] = {}
    runs_lock = threading.Lock()  # "is one running?" and "start one" as one step

    def run_out(run: dict) -> ScenarioRunOut:
        return ScenarioRunOut(**{k: run[k] for k in ScenarioRunOut.model_fields})

    @app.post("/api/scenarios", response_model=ScenarioRunOut, status_code=202)
    def start_scenario(body: ScenarioRequest, who: Operator) -> ScenarioRunOut:
        """Replay a scenario on the live network with the autopilot and with static routing, in the background;
        poll ``GET /api/scenarios/{id}`` for the result."""
        if body.hours > max_scenario_hours:
            raise HTTPException(422, f"hours: this server runs scenarios of at most {max_scenario_hours:g} h")
        try:  # every fault names a link or node of this network and starts within the run
            check_faults(list(body.faults), network, body.hours * 60.0)
        except InputError as exc:
            raise HTTPException(422, _printable(str(exc))) from None
        with runs_lock:
            if any(r["state"] == "running" for r in runs.values()):
                raise HTTPException(409, "a scenario run is in progress; one runs at a time")
            scenario = Scenario(name=f"api-{len(runs) + 1}", network=Path(network.name or "live"),
                                **body.model_dump())
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
    async def events(request: Request, ticket: Annotated[str | None, Query(
            max_length=100, description="From `POST /api/events/ticket`.")] = None) -> StreamingResponse:
        """Server-Sent Events: one `tick` event per loop tick (MLU, incident and change ids, latency)."""
        _holder(app.state.tickets, ticket, "event ticket")
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


def _ran_out(ran, ts: str | None, n_cells: int) -> RanOut:
    """``RanOut`` from the RAN part's latest frame and the configuration it ran under."""
    topo, frame, config = ran.topology, ran.latest, ran.ran_under
    if frame is None or config is None:
        return RanOut(ts=ts, cells_total=len(topo.cells), cells_up=0, sla_met_share=0.0, slo_target=SLO_TARGET,
                      step_ms=None, cells=[], sites=[], services=[])
    prbs = topo.prbs[:, None]
    guaranteed = np.array([s.guaranteed_share for s in topo.slices])[None, :] * prbs
    met = config.slice_shares * prbs >= np.minimum(frame.prb_demand, guaranteed) - 1e-6  # (C, S)
    load = frame.prb_demand.sum(axis=1) / topo.prbs
    busiest = np.argsort(-load, kind="stable")[:n_cells]
    cells = [RanCellOut(id=topo.cells[c], prbs=float(topo.prbs[c]), up=bool(frame.cell_up[c]),
                        home_site=topo.sites[int(topo.home[c])], load=float(load[c]),
                        slices=[RanSliceOut(name=sl.name, share=float(config.slice_shares[c, j]),
                                            demand_prbs=float(frame.prb_demand[c, j]),
                                            grant_prbs=float(frame.prb_grant[c, j]),
                                            guaranteed_prbs=float(guaranteed[c, j]), sla_met=bool(met[c, j]))
                                for j, sl in enumerate(topo.slices)])
             for c in busiest.tolist()]
    reserved = ran.reserved_under if ran.reserved_under is not None else np.zeros(len(topo.sites))
    names = [s.name for s in topo.services]
    sites = [RanSiteOut(id=site, up=bool(frame.site_up[k]), gpus=float(topo.gpus[k]), ran_gpus=float(frame.ran_gpus[k]),
                        ran_reserved_gpus=float(reserved[k]),
                        ai_powered_gpus=float(config.gpus_on[k]) if frame.site_up[k] else 0.0,
                        ai_busy_gpus=float(frame.ai_gpus[k]),
                        models=[names[i] for i in np.flatnonzero(config.loaded[:, k])],
                        requests_per_s=float(frame.request_rate[:, k].sum()))
             for k, site in enumerate(topo.sites)]
    offered = frame.cell_rate.sum(axis=0)
    cap = ran.loop.settings.min_utilisation  # the coolest the placement runs a site: its shortest response
    round_trip = np.where(frame.site_up[None, :], 2.0 * topo.latency_ms, np.inf)  # (C, K)
    services = []
    for i, svc in enumerate(topo.services):
        share = float(frame.slo_met[i] / offered[i]) if offered[i] > 1e-12 else 1.0
        reach = (round_trip + 1000.0 * svc.gpu_seconds / (1.0 - cap) <= svc.slo_ms + 1e-9).any(axis=1)
        reachable = float(frame.cell_rate[reach, i].sum() / offered[i]) if offered[i] > 1e-12 else 1.0
        services.append(RanServiceOut(name=svc.name, slo_ms=svc.slo_ms, requests_per_s=float(offered[i]),
                                      unserved_per_s=max(float(frame.unserved[i]), 0.0),
                                      slo_met_per_s=float(frame.slo_met[i]), slo_met_share=share,
                                      slo_met=share >= SLO_TARGET, reachable_share=reachable))
    up = frame.cell_up
    return RanOut(ts=ts, cells_total=len(topo.cells), cells_up=int(up.sum()),
                  sla_met_share=float(met[up].mean()) if up.any() else 1.0, slo_target=SLO_TARGET,
                  step_ms=ran.step_ms[-1] if ran.step_ms else None, cells=cells, sites=sites, services=services)


def _printable(text: str) -> str:
    """Text JSON can carry: a lone surrogate (from a ``\\udXXX`` escape) becomes U+FFFD."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _sound_json(value: object) -> str | None:
    """Why a parsed JSON body cannot be taken (a lone surrogate in a string or a key), or None."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "invalid Unicode (a lone surrogate) in a string"
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


class _Unsound(ValueError):
    """A number JSON does not allow (NaN, Infinity) or one too large for a float."""


def _refuse_constant(name: str) -> float:
    raise _Unsound(f"{name} is not a number JSON allows")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise _Unsound(f"{text[:40]} is out of range for a number")
    return number


class _BoundedJson:
    """ASGI middleware: a request body over ``limit`` bytes is answered 413 before it is read further; a JSON
    body with NaN, an infinity (or a number that overflows to one) or invalid Unicode is answered 422, so no
    endpoint ever sees one."""

    def __init__(self, app, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await _answer(send, 413, f"the request body is larger than {self.limit} bytes")
            return
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.limit:
                await _answer(send, 413, f"the request body is larger than {self.limit} bytes")
                return
        if body:
            try:
                parsed = json.loads(body, parse_constant=_refuse_constant, parse_float=_finite)
                problem = _sound_json(parsed)
            except UnicodeDecodeError:
                problem = "the body is not UTF-8"
            except _Unsound as exc:
                problem = str(exc)
            except ValueError:  # not JSON at all: the endpoint's own validation answers
                problem = None
            if problem:
                await _answer(send, 422, problem)
                return
        delivered = False

        async def replay():
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def _answer(send, status: int, detail: str) -> None:
    payload = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})
