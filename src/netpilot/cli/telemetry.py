"""`netpilot sim` and `netpilot telemetry`: simulate the network, ingest, query and export telemetry."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import Progress
from rich.table import Table

from netpilot.cli.common import print_json, reports_errors, stderr, stdout
from netpilot.errors import InputError

sim_app = typer.Typer(help="The network simulator: telemetry with faults whose ground truth is known.",
                      no_args_is_help=True)
app = typer.Typer(help="Telemetry: ingest files or a NATS stream, query the store, export to Prometheus.",
                  no_args_is_help=True)

StoreOption = Annotated[str, typer.Option(help="duckdb:///relative/path.db, duckdb:////absolute/path.db (or a "
                                                 "plain path), or postgresql://host/db[?schema=name].")]


def _network(path: Path):
    from netpilot.model.io import load_network

    return load_network(path)


def _store(location: str):
    from netpilot.telemetry.store import open_store

    try:
        return open_store(location)
    except Exception as exc:  # a server that is not there, a file that is not a database
        raise InputError.at(f"cannot open the store: {exc}", field="--store") from None


@sim_app.command("run")
@reports_errors
def sim_run(
    network: Annotated[Path, typer.Option(help="Network file (netpilot YAML/JSON).")],
    out: Annotated[Path, typer.Option(help="Samples as Parquet; events and ground truth are written beside it.")],
    hours: Annotated[float, typer.Option(help="Simulated time.")] = 1.0,
    step: Annotated[float, typer.Option(help="Seconds per step.")] = 60.0,
    faults: Annotated[Optional[Path], typer.Option(help="Fault schedule (YAML/JSON).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same run.")] = 0,
    store: Annotated[Optional[str], typer.Option(help="Also write into this store.")] = None,
) -> None:
    """Simulate the network and write its telemetry."""
    from netpilot.model.faults import check_faults, load_faults
    from netpilot.model.io import parse_document, read_text
    from netpilot.telemetry.sim.run import simulate, write_result

    if hours <= 0 or step <= 0:
        raise InputError.at("--hours and --step must be positive", field="--hours")
    net = _network(network)
    schedule = load_faults(faults) if faults else []
    if faults:
        listed = isinstance(parse_document(read_text(faults), faults), list)  # a list, or {faults: [...]}
        check_faults(schedule, net, hours * 60.0, file=faults, field="" if listed else "faults")
    try:
        with Progress(console=stderr(), transient=True) as progress:
            task = progress.add_task("simulating", total=round(hours * 3600 / step))
            result = simulate(net, hours=hours, step_seconds=step, faults=schedule, seed=seed,
                              on_step=lambda i, n: progress.update(task, completed=i))
    except ValueError as exc:
        raise InputError.at(str(exc), file=faults) from None
    paths = write_result(result, out)
    if store:
        target = _store(store)
        target.write(result.samples)
        target.write_events(result.events)
        target.write_faults(result.truth)
        target.close()
    table = Table(show_header=False, title="simulation")
    table.add_row("samples", f"{result.samples.num_rows:,} → {paths['samples']}")
    table.add_row("events", f"{len(result.events):,} → {paths['events']}")
    table.add_row("faults (ground truth)", f"{len(result.truth)} → {paths['faults']}")
    stdout().print(table)


@app.command()
@reports_errors
def ingest(
    source: Annotated[str, typer.Argument(help="A CSV or Parquet file (timestamp, entity, metric, value[, unit]), "
                                               "or nats://host:port/subject for a JetStream stream.")],
    store: StoreOption = "duckdb:///netpilot.duckdb",
    network: Annotated[Optional[Path], typer.Option(help="Only entities of this network are accepted.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print {stored, dead_lettered, duplicates} as JSON.")]
    = False,
    max_messages: Annotated[Optional[int], typer.Option(help="NATS: stop after this many messages.")] = None,
    idle_seconds: Annotated[float, typer.Option(help="NATS: stop after this long with nothing to read.")] = 2.0,
) -> None:
    """Store telemetry from a file or a NATS stream; bad records go to the dead-letter table."""
    from netpilot.telemetry.ingest import consume_sync, replay_file
    from netpilot.telemetry.schema import known_entities

    entities = known_entities(_network(network)) if network else None
    target = _store(store)
    try:
        if source.startswith("nats://"):
            server, subject = _nats_source(source)
            try:
                report = consume_sync(server, target, entities, subject=subject, max_messages=max_messages,
                                      idle_seconds=idle_seconds)
            except OSError as exc:
                raise InputError.at(f"cannot reach NATS at {server}: {exc}", field="SOURCE") from None
        else:
            report = replay_file(Path(source), target, entities)
    finally:
        target.close()
    if as_json:
        print_json(report.as_dict())
        return
    table = Table(show_header=False, title=f"ingested {source}")
    table.add_row("stored", f"{report.stored:,}")
    table.add_row("duplicates", f"{report.duplicates:,}")
    table.add_row("dead-lettered", f"{report.dead:,}" + (f" ({dict(report.reasons)})" if report.dead else ""))
    stdout().print(table)


def _nats_source(source: str) -> tuple[str, str]:
    """``nats://host:port/subject`` -> (server URL, subject prefix)."""
    rest = source[len("nats://"):]
    host, _, subject = rest.partition("/")
    return f"nats://{host or '127.0.0.1:4222'}", subject or "netpilot.telemetry"


@app.command()
@reports_errors
def query(
    entity: Annotated[str, typer.Option(help="Entity id, e.g. link:A->B, cell:C1.")],
    metric: Annotated[str, typer.Option(help="Metric name, e.g. utilisation (or utilization).")],
    store: StoreOption = "duckdb:///netpilot.duckdb",
    start: Annotated[Optional[datetime], typer.Option(help="From (UTC).")] = None,
    end: Annotated[Optional[datetime], typer.Option(help="Until (UTC), exclusive.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print one series from the store."""
    from netpilot.telemetry.schema import metric_of

    try:
        known_metric = metric_of(entity, metric)
    except ValueError as exc:
        raise InputError.at(str(exc), field="--metric") from None
    metric, unit = known_metric.name, known_metric.unit
    target = _store(store)
    try:
        ts, values = target.query(entity, metric, start, end)
        known = len(ts) > 0 or bool(target.latest(entity=entity))
    finally:
        target.close()
    if not known:  # as the API answers 404: a typo in an entity must not read as a quiet series
        raise InputError.at(f"the store holds no samples of {entity!r}", field="--entity")
    if as_json:
        print_json({"entity": entity, "metric": metric, "unit": unit,
                    "points": [{"ts": str(t) + "Z", "value": float(v)} for t, v in zip(ts, values)]})
        return
    table = Table(title=f"{entity} {metric} ({unit})")
    table.add_column("ts (UTC)")
    table.add_column("value", justify="right")
    for t, v in zip(ts, values):
        table.add_row(str(t), f"{v:.6g}")
    stdout().print(table)


@app.command("dead-letters")
@reports_errors
def dead_letters(store: StoreOption = "duckdb:///netpilot.duckdb") -> None:
    """Print the records that were refused, with why."""
    target = _store(store)
    try:
        letters = target.dead_letters()
    finally:
        target.close()
    print_json([{"received": d.received.isoformat(), "source": d.source, "reason": d.reason,
                 "raw": json.loads(d.raw) if d.raw.startswith(("{", "[")) else d.raw} for d in letters])


@app.command()
@reports_errors
def export(
    store: StoreOption = "duckdb:///netpilot.duckdb",
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port for /metrics.")] = 9108,
) -> None:
    """Serve the latest KPIs for Prometheus at http://HOST:PORT/metrics until Ctrl-C."""
    import contextlib
    import time

    from prometheus_client import start_http_server

    from netpilot.telemetry.exporter import registry_for

    target = _store(store)
    server, _thread = start_http_server(port, addr=host, registry=registry_for(target))
    stdout().print(f"serving http://{host}:{port}/metrics (Ctrl-C stops)")
    try:
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how it stops
            while True:
                time.sleep(1)
    finally:
        server.shutdown()
        target.close()
