"""`netpilot change`: turn intents into a change on the twin and verify it before anything is applied."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from netpilot.cli.common import reports_errors, stdout
from netpilot.cli.topo import MatrixOption, UnitOption, load_network
from netpilot.errors import InputError

app = typer.Typer(help="Safe change: intents, verification on the twin (approval and apply to come).",
                  no_args_is_help=True)


@app.command()
@reports_errors
def verify(
    network: Annotated[Path, typer.Option(help="Network file: the twin as it is now.")],
    intent: Annotated[Path, typer.Option(help="JSON/YAML list of intents (set_link_state, set_metric, "
                                              "drain_node, apply_metrics).")],
    output: Annotated[Optional[Path], typer.Option("--json", help="Write the report as JSON here.")] = None,
    demands: Annotated[Optional[Path], typer.Option(help="Demand matrix; default: the network file's own.")] = None,
    matrix: MatrixOption = "0",
    unit: UnitOption = "Mbit/s",
    max_utilisation: Annotated[float, typer.Option(help="Highest link utilisation a change may leave.")] = 1.0,
    peak_factor: Annotated[float, typer.Option(help="Forecast peak as a multiple of the demand matrix.")] = 1.0,
    failures: Annotated[bool, typer.Option(help="Also check every single link failure (what-if).")] = True,
) -> None:
    """Verify intents on the twin: prints each check and writes {"ok": bool, "checks": [...]}."""
    from netpilot.change.intents import apply_intents, load_intents
    from netpilot.change.verify import verify_change

    if max_utilisation <= 0 or peak_factor <= 0:
        raise InputError.at("--max-utilisation and --peak-factor must be positive", field="--max-utilisation")
    before = load_network(network, demands, unit, "inverse_capacity", matrix)
    intents = load_intents(intent)
    if not intents:
        raise InputError.at("no intents", file=intent)
    after = apply_intents(before, intents, file=intent)
    report = verify_change(before, after, max_utilisation=max_utilisation, peak_factor=peak_factor,
                           failures=failures)
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
