"""What a new user meets first: store URLs, bad input as located errors (exit 2), exit codes a script can gate on
(1 when refused), the help text, and the US spelling of utilisation."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from netpilot.cli import app
from netpilot.model.sample import bundled_network_path
from netpilot.telemetry.store import duckdb_path, open_store

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
runner = CliRunner()


def run(*args) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output and "internal error" not in result.output, result.output
    return result.exit_code, result.output


# --- store URLs --------------------------------------------------------------------------------------------------

def test_duckdb_urls_follow_sqlalchemy_three_slashes_relative_four_absolute(tmp_path, monkeypatch):
    assert duckdb_path("duckdb:///netpilot.duckdb") == "netpilot.duckdb"
    assert duckdb_path("duckdb:///data/np.duckdb") == "data/np.duckdb"
    assert duckdb_path("duckdb:////var/lib/np.duckdb") == "/var/lib/np.duckdb"
    assert duckdb_path("duckdb://") == ":memory:" and duckdb_path("duckdb:///:memory:") == ":memory:"
    with pytest.raises(ValueError, match="no host"):
        duckdb_path("duckdb://host/np.duckdb")
    monkeypatch.chdir(tmp_path)
    open_store("duckdb:///here.duckdb").close()
    assert (tmp_path / "here.duckdb").exists()
    absolute = tmp_path / "sub" / "there.duckdb"
    absolute.parent.mkdir()
    open_store(f"duckdb:///{absolute}").close()  # "duckdb:////tmp/..."
    assert absolute.exists()


def test_the_default_store_is_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "t.csv"
    data.write_text("timestamp,entity,metric,value\n2026-01-01T00:00:00Z,link:DE->AT,utilization,0.5\n")
    code, output = run("telemetry", "ingest", data, "--json")
    assert code == 0 and json.loads(output)["stored"] == 1
    assert (tmp_path / "netpilot.duckdb").exists()
    # The US spelling is stored as the catalogue spells it, and a query may use either.
    code, output = run("telemetry", "query", "--entity", "link:DE->AT", "--metric", "utilization", "--json")
    assert code == 0, output
    document = json.loads(output)
    assert document["metric"] == "utilisation" and [p["value"] for p in document["points"]] == [0.5]
    code, output = run("telemetry", "query", "--entity", "link:XX->AT", "--metric", "utilisation")
    assert code == 2 and "--entity" in output and "XX->AT" in output


# --- bad input: exit 2, naming file, line and field ------------------------------------------------------------

def test_scenario_faults_on_what_the_network_lacks_or_after_the_run_are_located(tmp_path):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(f"network: {bundled_network_path()}\nhours: 1\nfaults:\n"
                        "  - {kind: link_down, target: [BG, XX], at_minute: 10}\n"
                        "  - {kind: link_down, target: [BG, NL], at_minute: 10}\n"
                        "  - kind: router_down\n    target: QQ\n    at_minute: 90\n")
    code, output = run("scenario", "run", scenario)
    assert code == 2
    assert f"{scenario}:4: faults[0].target: no node 'XX'" in output
    assert f"{scenario}:5: faults[1].target: no link between BG and NL" in output
    assert f"{scenario}:7: faults[2].target: no node 'QQ'" in output
    assert f"{scenario}:8: faults[2].at_minute: minute 90 is not within the run (60 minutes)" in output
    faults = tmp_path / "f.yaml"
    faults.write_text("- {kind: link_down, target: [DE, AT], at_minute: 90}\n")
    code, output = run("sim", "run", "--network", bundled_network_path(), "--faults", faults, "--hours", "1",
                       "--out", tmp_path / "o.parquet")
    assert code == 2 and f"{faults}:1: [0].at_minute: minute 90" in output
    assert not (tmp_path / "o.parquet").exists()


@pytest.mark.parametrize("command", [["forecast", "--horizon", "2"], ["detect"]])
def test_a_csv_that_is_not_utf8_is_located(tmp_path, command):
    data = tmp_path / "latin1.csv"
    data.write_bytes("timestamp,value\n2026-01-01T00:00:00Z,1\n2026-01-01T00:01:00Z,2 # d\xe9bit\n".encode("latin-1"))
    code, output = run(*command, "--input", data, "--json", tmp_path / "o.json")
    assert code == 2 and f"{data}:3: not UTF-8" in output


def test_ingesting_a_corrupt_parquet_file_is_refused(tmp_path):
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1" + b"\x00" * 64)
    code, output = run("telemetry", "ingest", broken, "--store", tmp_path / "s.duckdb")
    assert code == 2 and str(broken) in output and "not a readable Parquet file" in output
    text = tmp_path / "t.csv"
    text.write_bytes(b"timestamp,entity,metric,value\n2026-01-01T00:00:00Z,link:DE->AT,load,\xff\n")
    code, output = run("telemetry", "ingest", text, "--store", tmp_path / "s.duckdb")
    assert code == 2 and f"{text}:2: not UTF-8" in output


def test_intent_errors_name_the_line(tmp_path):
    intents = tmp_path / "i.yaml"
    intents.write_text("- {intent: set_metric, source: FRA, target: MIL, metric: 5}\n"
                       "- intent: set_link_state\n  source: Q\n  target: PAR\n  state: down\n")
    code, output = run("change", "verify", "--network", EXAMPLES / "network.yaml", "--intent", intents)
    assert code == 2 and f"{intents}:3: [1].source: no node 'Q' in the network" in output
    nested = tmp_path / "n.yaml"
    nested.write_text("intents:\n  - intent: drain_node\n    node: NOPE\n")
    code, output = run("change", "verify", "--network", EXAMPLES / "network.yaml", "--intent", nested)
    assert code == 2 and f"{nested}:3: intents[0].node: no node 'NOPE'" in output


def test_rca_refuses_telemetry_of_another_network(tmp_path):
    telemetry = tmp_path / "run.parquet"
    code, output = run("sim", "run", "--network", bundled_network_path(), "--hours", "0.05", "--out", telemetry)
    assert code == 0, output
    code, output = run("rca", "--telemetry", telemetry, "--network", EXAMPLES / "network.yaml",
                       "--json", tmp_path / "rca.json")
    assert code == 2 and "telemetry of another network" in output and "entity" in output
    assert not (tmp_path / "rca.json").exists()


def test_repetita_demands_of_another_topology_are_refused(tmp_path):
    graph = tmp_path / "Tri.graph"
    graph.write_text("NODES 3\nlabel x y\na 0 0\nb 1 0\nc 0 1\n\nEDGES 6\nlabel src dest weight bw delay\n"
                     + "".join(f"e{i} {s} {t} 1 1000000 100\n" for i, (s, t) in
                               enumerate([(0, 1), (1, 0), (1, 2), (2, 1), (0, 2), (2, 0)])))
    own = tmp_path / "Tri.0000.demands"
    own.write_text("DEMANDS 2\nlabel src dest bw\nd0 0 1 1000\nd1 1 2 1000\n")
    other = tmp_path / "Other.0000.demands"
    other.write_text(own.read_text())
    code, output = run("topo", "import", graph, "--demands", own, "-o", tmp_path / "tri.yaml")
    assert code == 0, output
    code, output = run("topo", "import", graph, "--demands", other, "-o", tmp_path / "x.yaml")
    assert code == 2 and "demands of 'Other', the network is 'Tri'" in output


def test_an_up_link_of_zero_capacity_fails_validate(tmp_path):
    text = (EXAMPLES / "network.yaml").read_text()
    broken = tmp_path / "n.yaml"
    broken.write_text(text.replace("{source: AMS, target: FRA, capacity: 100000",
                                   "{source: AMS, target: FRA, capacity: 0", 1))
    code, output = run("topo", "validate", broken)
    line = next(i for i, row in enumerate(broken.read_text().splitlines(), 1) if "capacity: 0," in row)
    assert code == 2 and f"{broken}:{line}: links[0].capacity: zero capacity on a link that is up" in output


# --- exit codes: 1 when refused ------------------------------------------------------------------------------------

def test_verify_and_propose_exit_1_when_refused(tmp_path):
    network, refused = EXAMPLES / "network.yaml", EXAMPLES / "intents-refused.yaml"
    code, output = run("change", "verify", "--network", network, "--intent", EXAMPLES / "intents.yaml")
    assert code == 0 and "PASSED" in output
    code, output = run("change", "verify", "--network", network, "--intent", refused)
    assert code == 1 and "REFUSED" in output
    db = tmp_path / "c.db"
    # The proposer is the person running the command (the OS user here): no --by.
    code, output = run("change", "propose", "--network", network, "--intent", refused, "--why", "test", "--db", db)
    assert code == 1 and re.search(r"change \S+: rejected", output)
    code, output = run("change", "propose", "--network", network, "--intent", EXAMPLES / "intents.yaml", "--why",
                       "test", "--db", db)
    assert code == 0 and re.search(r"change \S+: verified", output)


def test_the_shipped_intents_hold_every_kind():
    from netpilot.change.intents import load_intents

    kinds = {type(i).__name__ for i in load_intents(EXAMPLES / "intents.yaml")}
    assert kinds == {"SetLinkState", "SetMetric", "DrainNode", "ApplyMetrics", "SetPolicies"}


# --- help text -----------------------------------------------------------------------------------------------------

def test_help_shows_no_bool_type_and_keeps_brackets():
    code, output = run("change", "propose", "--help")
    assert code == 0 and "<bool>" not in output and "<path>" in output
    assert "auto_approve: [apply_metrics]" in re.sub(r"\s+", " ", output.replace("│", " "))
    code, output = run("change", "verify", "--help")
    assert "set_policies" in output and "<bool>" not in output
    code, output = run("--version")
    assert code == 0 and re.fullmatch(r"\d+\.\d+\.\d+\S*\n", output)

