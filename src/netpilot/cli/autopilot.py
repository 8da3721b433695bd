"""`netpilot scenario run`, `netpilot serve` and `netpilot demo`: the autopilot on a scenario, or live behind the
API and dashboard."""

from __future__ import annotations

import contextlib
import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from netpilot.cli.common import reports_errors, stderr, stdout

scenario_app = typer.Typer(help="Scenarios: timed faults replayed with the autopilot and with static routing.",
                           no_args_is_help=True)

#: The demo starts two hours before the bundled profile's busy hour, so congestion builds while you watch.
DEMO_START = datetime(2026, 1, 9, 13, 0, tzinfo=UTC)


@scenario_app.command("run")
@reports_errors
def run(file: Annotated[Path, typer.Argument(help="Scenario YAML/JSON.")],
        output: Annotated[Optional[Path], typer.Option("--json", help="Write the results here.")] = None) -> None:
    """Replay the scenario with the autopilot acting and with static shortest-path routing; print and write
    detection, root-cause rank, overload, changes and decision latency."""
    from netpilot.model.faults import check_faults
    from netpilot.scenarios.scenario import compare, load_scenario, scenario_network

    scenario = load_scenario(file)
    network = scenario_network(scenario)
    check_faults(scenario.faults, network, scenario.hours * 60.0, file=file)
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} steps"),
               TimeRemainingColumn())
    with Progress(*columns, console=stderr(), transient=True) as progress:
        tasks: dict[str, int] = {}

        def report(label: str, done: int, total: int) -> None:
            if label not in tasks:
                tasks[label] = progress.add_task(label, total=total)
            progress.update(tasks[label], completed=done)

        result = compare(scenario, progress=report, settle=True, network=network)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(result, indent=1, default=str) + "\n")
    table = Table(title=f"scenario {result['scenario']}")
    table.add_column("fault")
    table.add_column("detected")
    table.add_column("seconds to detect", justify="right")
    table.add_column("root-cause rank", justify="right")
    for f in result["faults"]:
        table.add_row(f"{f['kind']} {f['target']} @{f['at_minute']:g} min", "yes" if f["detected"] else "NO",
                      "–" if f["seconds_to_detect"] is None else f"{f['seconds_to_detect']:.0f}",
                      "–" if f["root_cause_rank"] is None else str(f["root_cause_rank"]))
    console = stdout()
    console.print(table)
    overload = result["overload_traffic"]
    cut = "n/a (no overload without the autopilot)" if overload["cut"] is None else f"{overload['cut']:.1%}"
    latency = result["decision_latency_ms"]
    console.print(f"overload traffic: autopilot {overload['autopilot_gbit']:.1f} Gbit, static routing "
                  f"{overload['baseline_gbit']:.1f} Gbit (cut {cut}); changes proposed {result['changes_proposed']}, "
                  f"applied {result['changes_applied']}, refused by verification {result['changes_refused']}, "
                  f"unsafe applied {result['unsafe_changes_applied']}; decision latency p50 {latency['p50']:.1f} ms, "
                  f"p99 {latency['p99']:.1f} ms")


@scenario_app.command("generate")
@reports_errors
def generate(
    network: Annotated[Path, typer.Argument(help="Network file (YAML/JSON, or any format `topo import` reads).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Scenario YAML to write.")],
    seed: Annotated[int, typer.Option(help="Draws the faults, their times and targets, and the demand noise.")] = 0,
    load: Annotated[float, typer.Option(help="The LP optimum's MLU at the peak hour that the demand is scaled "
                                             "to (0.75: good routing carries everything, shortest paths may not).")
                    ] = 0.75,
    hours: Annotated[float, typer.Option(help="Length of the run.")] = 3.0,
    faults: Annotated[int, typer.Option(help="How many faults (0: the day's ramp alone).")] = 3,
    kinds: Annotated[Optional[str], typer.Option(help="Comma-separated fault kinds to draw from (default: all "
                                                      "the network has targets for).")] = None,
    demands: Annotated[Optional[Path], typer.Option(help="Demand matrix replacing the network file's.")] = None,
) -> None:
    """Generate a scenario on any network: faults of every kind at random times in and around the busy hours,
    on targets weighted by the traffic they carry, and the demand scaled to a stated load. Faults that strand
    traffic no routing can carry are kept and named."""
    from netpilot.scenarios.generate import GENERATED_KINDS, generate_scenario, write_scenario

    chosen = tuple(k.strip() for k in kinds.split(",") if k.strip()) if kinds else GENERATED_KINDS
    scenario = generate_scenario(network, seed=seed, load=load, hours=hours, faults=faults, kinds=chosen,
                                 demands=demands, relative_to=output.resolve().parent)
    write_scenario(scenario, output)
    info = scenario.generated
    console = stdout()
    console.print(f"wrote {output}: {len(scenario.faults)} faults over {hours:g} h from "
                  f"{scenario.start:%a %H:%M} UTC; demand x{scenario.demand_scale:.4g} so the {info.lp_method} "
                  f"optimum's peak MLU is {load:g} (shortest paths: {info.static_peak_mlu:.3g})")
    for fault, found in zip(scenario.faults, info.faults, strict=True):
        target = "--".join(fault.target) if isinstance(fault.target, list) else fault.target
        stranded = "" if found.helpable else f"  [strands {found.strands_share:.1%} of the demand: no routing " \
                                              "can carry it]"
        console.print(f"  {fault.id}: {fault.kind} {target} for {fault.duration_minutes:g} min{stranded}")


def write_token_file(path: Path, tokens: dict, url: str) -> None:
    """The tokens, once, in a file only this user can read (0600): one line per user with the dashboard URL
    that signs them in (the token in the URL's fragment, which the browser never sends to the server)."""
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)  # a fresh file, so its mode is ours whatever the old one had
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        for token, who in tokens.items():
            expires = f"{who.expires:%Y-%m-%d %H:%M} UTC" if who.expires else "never"
            file.write(f"{who.role} {who.user} (until {expires}): {url}#token={token}\n")


def serve_live(live, *, host: str, port: int, users: dict[str, str], token_file: Path,
               announce: bool = True) -> None:
    """Serve the API and dashboard for ``live`` until Ctrl-C, then stop the loop. The users' tokens go to
    ``token_file`` (0600), never to the terminal, which may be logged or shared."""
    import uvicorn

    from netpilot.api.app import create_app, make_tokens
    from netpilot.autopilot.loop import settle_heap

    tokens = make_tokens(users)
    app = create_app(live, tokens)
    console = stdout()
    # Before the URL is shown: the first run on a machine compiles the routing kernels (seconds).
    with console.status("Getting the loop ready (the first run compiles its routing kernels)"):
        settle_heap()
    url = f"http://{host}:{port}/"
    write_token_file(token_file, tokens, url)
    if announce:
        console.print(f"[bold]netpilot[/] dashboard: {url}")
        for token, who in tokens.items():
            console.print(f"  {who.role:9s} {who.user:6s} token {token[:4]}… (in full in {token_file})")
        console.print(f"Open the approver's line of {token_file} (readable by you only) in a browser to approve "
                      "changes; Ctrl-C stops.")
    live.start()
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        live.stop()


DEMO_USERS = {"alice": "approver", "oscar": "operator", "vera": "viewer"}


@reports_errors
def demo(port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8000,
         tick_seconds: Annotated[float, typer.Option(help="Wall seconds per simulated minute.")] = 1.0,
         db: Annotated[Path, typer.Option(help="Change database (SQLite).")] = Path("netpilot-demo.db"),
         seconds: Annotated[Optional[float], typer.Option(help="Stop by itself after this long.")] = None,
         ran: Annotated[bool, typer.Option("--ran/--no-ran", help="Also run the AI-RAN of the network's cells and "
                                                                  "edge sites (slicing approved by policy, "
                                                                  "inference placement by you).")] = True) -> None:
    """The autopilot live on the bundled network: simulator, a scripted link failure at minute 20, the
    dashboard on 127.0.0.1, changes waiting for your approval. Embedded storage only. With the AI-RAN part
    (on unless --no-ran; it needs the staged Azure LLM trace), each minute also re-slices every cell and
    re-places inference on the edge GPUs when load moves."""
    from netpilot.change.workflow import Policy
    from netpilot.errors import InputError
    from netpilot.model.faults import Fault
    from netpilot.model.io import load_network
    from netpilot.model.sample import bundled_network_path
    from netpilot.scenarios.live import LiveAutopilot
    from netpilot.telemetry.sim.airan import read_llm_trace

    _fresh_demo_db(db)
    network = load_network(bundled_network_path())
    trace, note = None, "off (--no-ran)"
    if ran:
        try:
            trace = read_llm_trace()
        except InputError as exc:
            note = f"off: {exc}"
    live = LiveAutopilot(network, faults=[Fault(kind="link_down", target=["BG", "GR"], at_minute=20,
                                                duration_minutes=120)],
                         seed=1, tick_seconds=tick_seconds, start=DEMO_START, changes_db=db,
                         policy=Policy(auto_approve=["set_slices"]), ran=trace is not None, ran_trace=trace)
    if live.ran is not None:
        topo = live.ran.topology
        note = (f"{len(topo.cells)} cells, {len(topo.sites)} edge sites with {topo.gpus.sum():g} GPUs; slice "
                "splits applied by policy, inference placements wait for your approval")
    stdout().print(f"Bundled network: {len(network.nodes)} nodes, {len(network.links)} links; simulated time "
                   f"starts {DEMO_START:%a %H:%M} UTC, one minute every {tick_seconds:g} s; BG–GR fails at minute 20."
                   f"\nAI-RAN: {note}.")
    live.changes.mark_owner(DEMO_OWNER)
    if seconds is not None:
        timer = threading.Timer(seconds, lambda: _interrupt())
        timer.daemon = True
        timer.start()
    serve_live(live, host="127.0.0.1", port=port, users=DEMO_USERS, token_file=db.with_name(db.name + ".tokens"))


DEMO_OWNER = "netpilot demo"


def _fresh_demo_db(db: Path) -> None:
    """A fresh demo each time (the last run's database refers to a finished simulation), but only a database
    an earlier demo created is deleted, with its key and witness; any other file is refused (exit 2)."""
    import sqlite3

    from netpilot.errors import InputError

    if not db.exists():
        return
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            owner = conn.execute("SELECT value FROM meta WHERE key = 'created_by'").fetchone()
    except sqlite3.Error:
        owner = None
    if owner is None or owner[0] != DEMO_OWNER:
        raise InputError.at("exists and was not created by netpilot demo; the demo deletes only its own "
                            "database: choose another --db", file=db)
    for path in (db, *(db.with_name(db.name + suffix) for suffix in
                       ("-wal", "-shm", ".key", ".witness", ".witness.lock", ".tokens"))):
        path.unlink(missing_ok=True)


def _interrupt() -> None:
    import os
    import signal

    os.kill(os.getpid(), signal.SIGINT)


@reports_errors
def autopilot(
    lab: Annotated[str, typer.Option(help="The FRR lab to drive (built with `netpilot lab up`).")],
    network: Annotated[Path, typer.Option(help="The network file the lab was built from.")],
    db: Annotated[Path, typer.Option(help="Change database (SQLite).")] = Path("netpilot-lab-changes.db"),
    journal: Annotated[Path, typer.Option(help="Commit journal, for recovery after a crash.")]
    = Path("netpilot-lab-commit.json"),
    auto_approve: Annotated[Optional[list[str]], typer.Option(
        help="Intent kinds applied without a person (e.g. apply_metrics); others wait for approval.")] = None,
    tick_seconds: Annotated[float, typer.Option(min=0.2, help="Seconds between polls of the lab.")] = 1.0,
    commit_confirm: Annotated[float, typer.Option(min=5.0, help="A change reverts by itself unless the loop's "
                                                                "post-check confirms it within this.")] = 120.0,
    seconds: Annotated[Optional[float], typer.Option(help="Stop by itself after this long.")] = None,
    port: Annotated[Optional[int], typer.Option(help="Also serve the API and dashboard on 127.0.0.1:PORT.")]
    = None,
) -> None:
    """The autopilot on a live FRR lab: polls its counters and OSPF state, localises failures, proposes and
    verifies changes, applies approved ones to the routers commit-confirmed and post-checks them against the
    twin. Prints incidents and changes as they happen."""
    import time

    from netpilot.autopilot.live import LabAutopilot
    from netpilot.change.drivers.frr.lab import available
    from netpilot.change.workflow import Policy
    from netpilot.errors import InputError
    from netpilot.model.io import load_network

    why = available()
    if why:
        raise InputError.at(why)
    live = LabAutopilot(load_network(network), lab, journal=journal, tick_seconds=tick_seconds,
                        policy=Policy(auto_approve=list(auto_approve or [])), changes_db=db,
                        commit_confirm=commit_confirm, tick_budget_ms=None)
    console = stdout()
    console.print(f"lab {lab}: {len(live.lab.routers)} routers; journal: {live.journal_recovered}")
    if port is not None:
        if seconds is not None:
            timer = threading.Timer(seconds, lambda: _interrupt())
            timer.daemon = True
            timer.start()
        serve_live(live, host="127.0.0.1", port=port, users=DEMO_USERS)
        return
    deadline = None if seconds is None else time.monotonic() + seconds
    seen_incidents, seen_audit = 0, 0
    try:
        while deadline is None or time.monotonic() < deadline:
            began = time.monotonic()
            tick = live.step()
            pilot = live.autopilot
            for incident in pilot.incidents[seen_incidents:]:
                console.print(f"{tick.ts} incident {incident.id}: {', '.join(incident.alarms[:4])}")
            seen_incidents = len(pilot.incidents)
            audit = live.changes.audit()
            for entry in audit[seen_audit:]:
                console.print(f"{entry['at']} change {entry['change_id']}: {entry['action']} by {entry['actor']}")
            seen_audit = len(audit)
            time.sleep(max(0.0, tick_seconds - (time.monotonic() - began)))
    except KeyboardInterrupt:
        pass
    finally:
        live.autopilot.driver.close()
    console.print(f"{live.ticks} ticks, {len(live.autopilot.incidents)} incidents, "
                  f"{sum(a.state == 'done' for a in live.autopilot.applied)} changes applied and kept")
