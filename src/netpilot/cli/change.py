"""`netpilot change`: turn intents into a change on the twin and verify it before anything is applied."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from netpilot.cli.common import EXIT_REFUSED, reports_errors, stdout
from netpilot.cli.topo import MatrixOption, UnitOption, load_network
from netpilot.errors import InputError

app = typer.Typer(help="Safe change: intents, verification on the twin, approval, apply and rollback.",
                  no_args_is_help=True)


@app.command()
@reports_errors
def verify(
    network: Annotated[Path, typer.Option(help="Network file: the twin as it is now.")],
    intent: Annotated[Path, typer.Option(help="JSON/YAML list of intents (set_link_state, set_metric, "
                                              "drain_node, apply_metrics, set_policies; examples/intents.yaml).")],
    output: Annotated[Optional[Path], typer.Option("--json", help="Write the report as JSON here.")] = None,
    demands: Annotated[Optional[Path], typer.Option(help="Demand matrix; default: the network file's own.")] = None,
    matrix: MatrixOption = "0",
    unit: UnitOption = "Mbit/s",
    max_utilisation: Annotated[float, typer.Option(help="Highest link utilisation a change may leave.")] = 1.0,
    peak_factor: Annotated[float, typer.Option(help="Forecast peak as a multiple of the demand matrix.")] = 1.0,
    failures: Annotated[bool, typer.Option(help="Also check every single link failure (what-if).")] = True,
) -> None:
    """Verify intents on the twin: prints each check and writes {"ok": bool, "checks": [...]}. Exits 0 when the
    change passes, 1 when verification refuses it, 2 on bad input."""
    from netpilot.change.intents import apply_intents, load_intents
    from netpilot.change.verify import VerificationSettings, verify_change

    if max_utilisation <= 0 or peak_factor <= 0:
        raise InputError.at("--max-utilisation and --peak-factor must be positive", field="--max-utilisation")
    before = load_network(network, demands, unit, "inverse_capacity", matrix)
    intents = load_intents(intent)
    if not intents:
        raise InputError.at("no intents", file=intent)
    after = apply_intents(before, intents, file=intent)
    report = verify_change(before, after, VerificationSettings(max_utilisation=max_utilisation, failures=failures),
                           peak_factor=peak_factor)
    document = report.as_dict()
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(document, indent=1) + "\n")
    table = Table(title=f"verification: {'PASSED' if report.ok else 'REFUSED'} ({report.seconds:.2f} s)")
    table.add_column("check")
    table.add_column("")
    table.add_column("detail")
    for check in report.checks:
        table.add_row(check.name, "[green]ok[/]" if check.ok else "[red]FAIL[/]", check.detail)
    stdout().print(table)
    if not report.ok:
        raise typer.Exit(EXIT_REFUSED)


DbOption = Annotated[str, typer.Option(help="The change database: a SQLite file, or postgresql://...[?schema=name].")]


def _store(db: str, policy: Path | None = None):
    from netpilot.change.workflow import ChangeStore, Policy

    chosen = Policy()
    if policy is not None:
        from netpilot.model.io import LineLocator, parse_document, parse_model, read_text

        text = read_text(policy)
        chosen = parse_model(Policy, parse_document(text, policy), file=policy, locator=LineLocator(text))
    return ChangeStore(db, chosen)


ByOption = Annotated[Optional[str], typer.Option(
    help="Who you are, checked, not trusted: it must name the holder of NETPILOT_TOKEN (looked up in the token "
         "book) or, without a token, the operating-system user you run as.")]


def _token_book(db: str) -> Path:
    """``NETPILOT_TOKEN_BOOK``, else beside an SQLite database, else in ``~/.local/state/netpilot``."""
    import os

    if os.environ.get("NETPILOT_TOKEN_BOOK"):
        return Path(os.environ["NETPILOT_TOKEN_BOOK"])
    if db.startswith(("postgresql://", "postgres://")):
        return Path.home() / ".local" / "state" / "netpilot" / "tokens.json"
    return Path(db.removeprefix("sqlite://") + ".tokens.json")


def _who(db: str, by: str | None) -> str:
    """The person at the command line (never a name typed on it), normalised; ``--by`` must agree."""
    from netpilot.change.identity import IdentityError, cli_identity, normalise

    try:
        me = cli_identity(_token_book(db))
        if by is not None and normalise(by) != me:
            raise InputError.at(f"--by {by!r} is not you: you are {me!r} (the holder of NETPILOT_TOKEN, else the "
                                "operating-system user)", field="--by")
    except IdentityError as exc:
        raise InputError.at(str(exc), field="identity") from None
    return me


def _workflow_errors(func):
    import functools

    from netpilot.change.workflow import WorkflowError

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except WorkflowError as exc:
            raise InputError.at(f"refused: {exc}") from None
    return wrapper


@app.command()
@reports_errors
@_workflow_errors
def propose(
    network: Annotated[Path, typer.Option(help="Network file: the twin as it is now.")],
    intent: Annotated[Path, typer.Option(help="JSON/YAML list of intents (examples/intents.yaml).")],
    why: Annotated[str, typer.Option(help="The incident, forecast or request behind it.")],
    by: ByOption = None,
    db: DbOption = "netpilot-changes.db",
    policy: Annotated[Optional[Path], typer.Option(
        help="YAML policy file, e.g. auto_approve: \\[apply_metrics] (intent kinds that need no person).")] = None,
    max_utilisation: Annotated[float, typer.Option(help="Highest link utilisation a change may leave.")] = 1.0,
    peak_factor: Annotated[float, typer.Option(help="Forecast peak as a multiple of the demand matrix.")] = 1.0,
) -> None:
    """Propose a change: it is verified at once, then waits for approval (or is rejected). Exits 0 when it is
    verified (or approved by policy), 1 when verification rejects it, 2 on bad input."""
    from netpilot.change.intents import apply_intents, load_intents
    from netpilot.change.verify import VerificationSettings, verify_change
    from netpilot.change.workflow import twin_diff
    from netpilot.model.io import load_network as load

    by = _who(db, by)
    before = load(network)
    intents = load_intents(intent)
    after = apply_intents(before, intents, file=intent)
    store = _store(db, policy)
    from netpilot.change.drivers.frr.render import config_diff

    diff = twin_diff(before, after) + [{"device": device, "config_diff": text}
                                       for device, text in config_diff(before, after).items()]
    change_id = store.propose([i.model_dump(exclude_none=True) for i in intents], by, why, diff)
    report = verify_change(before, after, VerificationSettings(max_utilisation=max_utilisation),
                           peak_factor=peak_factor)
    state = store.record_verification(change_id, report.as_dict())
    stdout().print(f"change {change_id}: {state}")
    stdout().print(report.text())
    if state == "rejected":
        raise typer.Exit(EXIT_REFUSED)


@app.command()
@reports_errors
@_workflow_errors
def approve(change_id: Annotated[str, typer.Argument()], by: ByOption = None,
            db: DbOption = "netpilot-changes.db") -> None:
    """Approve a verified change (not your own)."""
    by = _who(db, by)
    _store(db).approve(change_id, by)
    stdout().print(f"change {change_id}: approved by {by}")


@app.command()
@reports_errors
@_workflow_errors
def reject(change_id: Annotated[str, typer.Argument()], why: Annotated[str, typer.Option(help="Why.")],
           by: ByOption = None, db: DbOption = "netpilot-changes.db") -> None:
    """Reject a change that has not been applied."""
    _store(db).reject(change_id, _who(db, by), why)
    stdout().print(f"change {change_id}: rejected")


@app.command("token")
@reports_errors
def token(user: Annotated[str, typer.Option(help="Whose token.")],
          out: Annotated[Path, typer.Option(help="Where to write it (mode 0600); it is never printed.")],
          hours: Annotated[float, typer.Option(help="How long it works.", min=0.01, max=24 * 366)] = 12.0,
          db: DbOption = "netpilot-changes.db") -> None:
    """Issue a command-line identity: a token for USER, kept hashed in the token book, written once to OUT for
    that person to use as NETPILOT_TOKEN. Whoever can write the book decides who is who."""
    import os
    from datetime import timedelta

    from netpilot.change.identity import IdentityError, TokenBook

    book = _token_book(db)
    try:
        issued = TokenBook(book).issue(user, "person", timedelta(hours=hours))
    except IdentityError as exc:
        raise InputError.at(str(exc), field="--user") from None
    out.unlink(missing_ok=True)
    with os.fdopen(os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
        file.write(issued + "\n")
    stdout().print(f"token for {user.strip()} written to {out} (0600), valid {hours:g} h; book {book}")


@app.command("list")
@reports_errors
def list_(db: DbOption = "netpilot-changes.db",
          state: Annotated[Optional[str], typer.Option(help="Only changes in this state.")] = None) -> None:
    """The changes, oldest first."""
    table = Table(title="changes")
    for column in ("id", "state", "proposer", "approver", "why", "intents"):
        table.add_column(column)
    for c in _store(db).list(state):
        table.add_row(c.id, c.state, c.proposer, c.approver or "", c.why, ", ".join(i["intent"] for i in c.intents))
    stdout().print(table)


@app.command()
@reports_errors
@_workflow_errors
def show(change_id: Annotated[str, typer.Argument()], db: DbOption = "netpilot-changes.db") -> None:
    """One change as JSON: intents, diff, verification report and its audit entries."""
    from dataclasses import asdict

    from netpilot.cli.common import print_json

    store = _store(db)
    print_json({**asdict(store.get(change_id)), "audit": store.audit(change_id)})


@app.command()
@reports_errors
def audit(db: DbOption = "netpilot-changes.db") -> None:
    """Check the audit log's hash chain; exits 1 when it has been tampered with."""
    ok, detail = _store(db).verify_audit()
    stdout().print(("intact: " if ok else "BROKEN: ") + detail)
    if not ok:
        raise typer.Exit(1)


lab_app = typer.Typer(help="An FRR lab from the twin: a namespace per router, real zebra and ospfd.",
                      no_args_is_help=True)


def _lab(network: Path, name: str):
    from netpilot.change.drivers.frr.lab import Lab, LabError, available
    from netpilot.model.io import load_network as load

    why = available()
    if why:
        raise InputError.at(why)
    try:
        return Lab(name, load(network))
    except LabError as exc:
        raise InputError.at(str(exc), file=network) from None


@lab_app.command("up")
@reports_errors
def lab_up(network: Annotated[Path, typer.Option(help="Network file (its routers become the lab).")],
           name: Annotated[str, typer.Option(help="Lab name: namespaces are NAME-router.")] = "nplab",
           timeout: Annotated[float, typer.Option(help="Seconds to wait for OSPF to converge.")] = 90.0) -> None:
    """Build the lab and wait until OSPF has converged."""
    from netpilot.change.drivers.frr.lab import LabError

    lab = _lab(network, name)
    try:
        lab.up(converge_timeout=timeout)
    except LabError as exc:
        lab.down()
        raise InputError.at(str(exc)) from None
    stdout().print(f"lab {name}: {len(lab.routers)} routers up, OSPF converged")


@lab_app.command("down")
@reports_errors
def lab_down(network: Annotated[Path, typer.Option(help="The network file the lab was built from.")],
             name: Annotated[str, typer.Option(help="Lab name.")] = "nplab") -> None:
    """Stop the daemons and remove the namespaces, by PID and name."""
    _lab(network, name).down()
    stdout().print(f"lab {name}: removed")


@lab_app.command("status")
@reports_errors
def lab_status(network: Annotated[Path, typer.Option(help="The network file the lab was built from.")],
               name: Annotated[str, typer.Option(help="Lab name.")] = "nplab") -> None:
    """Per router: daemons, OSPF neighbours, OSPF routes."""
    lab = _lab(network, name)
    pids = lab.pids()
    table = Table(title=f"lab {name}")
    for column in ("router", "daemons", "full adjacencies", "OSPF routes"):
        table.add_column(column)
    for router in lab.routers:
        running = pids.get(router, {})
        try:
            full = sum(1 for s in lab.neighbors(router).values() if s.startswith("Full"))
            routes = len(lab.routes(router))
        except Exception:  # a router whose daemons are gone answers nothing
            full, routes = 0, 0
        table.add_row(router, ", ".join(running) or "none", f"{full}/{lab.expected_adjacencies()[router]}",
                      str(routes))
    stdout().print(table)


@lab_app.command("poll")
@reports_errors
def lab_poll(network: Annotated[Path, typer.Option(help="The network file the lab was built from.")],
             store: Annotated[str, typer.Option(help="Telemetry store: a DuckDB file or postgresql://...")],
             name: Annotated[str, typer.Option(help="Lab name.")] = "nplab",
             count: Annotated[int, typer.Option(min=2, help="Polls (the first sets the counters' baseline).")] = 5,
             interval: Annotated[float, typer.Option(min=0.2, help="Seconds between polls.")] = 1.0) -> None:
    """Poll the lab's interface counters and OSPF state and store them as telemetry samples."""
    import time

    from netpilot.change.drivers.frr.telemetry import LabTelemetry
    from netpilot.telemetry.store import open_store, table_of

    telemetry = LabTelemetry(_lab(network, name))
    target = open_store(store)
    written = 0
    try:
        for i in range(count):
            if i:
                time.sleep(interval)
            written += target.write(table_of(telemetry.poll()))
    finally:
        target.close()
    stdout().print(f"lab {name}: {written} samples stored in {store}")


@app.command()
@reports_errors
@_workflow_errors
def apply(
    change_id: Annotated[str, typer.Argument()],
    network: Annotated[Path, typer.Option(help="The network file the change was proposed against.")],
    lab: Annotated[str, typer.Option(help="The FRR lab to apply it to (built with `netpilot lab up`).")] = "nplab",
    db: DbOption = "netpilot-changes.db",
    journal: Annotated[Path, typer.Option(help="Commit journal, for recovery after a crash.")]
    = Path("netpilot-commit.json"),
    confirm_seconds: Annotated[float, typer.Option(help="Revert unless the post-check confirms within this.")]
    = 120.0,
) -> None:
    """Apply an approved change to the lab: commit-confirmed, post-check against the twin, confirm or roll back."""
    from netpilot.change.actuate import still_verified
    from netpilot.change.apply import apply_change, lab_matches_twin
    from netpilot.change.drivers import FrrDriver
    from netpilot.change.intents import IntentList, apply_intents
    from netpilot.change.verify import verify_change

    the_lab = _lab(network, lab)
    store = _store(db)
    driver = FrrDriver(the_lab, journal)
    recovered = driver.recover()
    stdout().print(f"journal: {recovered}")
    # The intents the audit chain shows verified and approved, not the row (anyone with the file can edit it).
    intents = IntentList.model_validate(store.approved_intents(change_id)).root
    candidate = apply_intents(the_lab.network, intents)
    # Verified again on the network as it is now: approval was given for the network as it was then.
    report = verify_change(the_lab.network, candidate)
    if not still_verified(store, change_id, report.as_dict(), "netpilot"):
        stdout().print(f"change {change_id}: rejected, it no longer passes verification\n{report.text()}")
        raise typer.Exit(1)
    state = apply_change(store, change_id, driver, candidate, lab_matches_twin(the_lab, candidate),
                         confirm_seconds=confirm_seconds)
    detail = store.audit(change_id)[-1]["detail"]
    stdout().print(f"change {change_id}: {state} ({detail.get('post_check', detail.get('why', ''))})")
    if state != "done":
        raise typer.Exit(1)


@app.command()
@reports_errors
@_workflow_errors
def rollback(
    change_id: Annotated[str, typer.Argument()],
    network: Annotated[Path, typer.Option(help="The network file the change was proposed against (what to go "
                                               "back to).")],
    why: Annotated[str, typer.Option(help="Why.")],
    by: ByOption = None,
    lab: Annotated[str, typer.Option(help="The FRR lab the change was applied to.")] = "nplab",
    db: DbOption = "netpilot-changes.db",
    journal: Annotated[Path, typer.Option(help="Commit journal, for recovery after a crash.")]
    = Path("netpilot-commit.json"),
    confirm_seconds: Annotated[float, typer.Option(help="Keep the old config only if the post-check confirms "
                                                        "within this.")] = 120.0,
) -> None:
    """Roll back a change: from the journal while it is being checked, or by reverting the routers to the
    network file's configuration (commit-confirmed, post-checked) once it is done."""
    from netpilot.change.apply import lab_matches_twin, rollback_change
    from netpilot.change.drivers import FrrDriver

    by = _who(db, by)
    the_lab = _lab(network, lab)
    store = _store(db)
    driver = FrrDriver(the_lab, journal)
    state = rollback_change(store, change_id, driver, the_lab.network, lab_matches_twin(the_lab, the_lab.network),
                            actor=by, why=why, confirm_seconds=confirm_seconds)
    detail = store.audit(change_id)[-1]["detail"]
    stdout().print(f"change {change_id}: {state} ({detail.get('post_check', detail.get('why', ''))})")
    if state != "rolled_back":
        raise typer.Exit(1)
