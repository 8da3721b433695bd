"""The `netpilot topo` commands as a user runs them, including every kind of bad input."""

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from netpilot.cli import app
from netpilot.model import load_network
from netpilot.model.sample import build_sample_network, bundled_network_path

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def run(*args: str):
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    return result


def test_import_repetita_with_demands_then_show_json(te_data, tmp_path):
    base = te_data / "repetita" / "2016TopologyZooUCL_inverseCapacity"
    out = tmp_path / "geant.yaml"
    result = run("topo", "import", base / "Geant2012.graph", "--demands", base / "Geant2012.0001.demands", "-o", out)
    assert result.exit_code == 0, result.output
    shown = run("topo", "show", out, "--json")
    data = json.loads(shown.stdout)
    assert (data["nodes"], data["links"], data["demands"], data["unit"]) == (40, 122, 1560, "Mbit/s")
    assert data["total_capacity"] == pytest.approx(sum(lk.capacity for lk in load_network(out).links))
    assert data["diameter_hops"] >= 1


def test_import_series_picks_the_requested_matrix(te_data, tmp_path):
    out = tmp_path / "abilene.json"
    result = run("topo", "import", te_data / "sndlib" / "topologies" / "germany50.xml", "--demands",
                 te_data / "sndlib" / "directed-germany50-DFN-aggregated-1day-over-1month.tar.gz",
                 "--matrix", "last", "-o", out, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["demands"] > 0
    assert any("matrix 27" in note for note in load_network(out).notes)


def test_show_human_readable(zoo_dir):
    result = run("topo", "show", zoo_dir / "Abilene.graphml")
    assert result.exit_code == 0
    assert "11 (11 routers)" in result.stdout and "diameter" in result.stdout


def test_validate_ok_and_json(zoo_dir):
    result = run("topo", "validate", zoo_dir / "Geant2012.graphml", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["ok"] is True


def test_inventory_example_builds_cells_and_edge_sites(tmp_path):
    result = run("topo", "show", ROOT / "examples" / "metro_inventory.yaml", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["nodes_by_kind"] == {"cell_site": 3, "edge_site": 1, "router": 4}
    assert data["links"] == 2 * (4 + 3 + 1)
    network = load_network_from_inventory()
    uplink = next(lk for lk in network.links if lk.source == "cell-201")
    assert uplink.capacity == 1000 and uplink.latency_ms == pytest.approx(0.25)
    core = next(lk for lk in network.links if (lk.source, lk.target) == ("core-a", "core-b"))
    assert core.metric == 1 and 0.12 < core.latency_ms < 0.15  # ~27 km of fibre at 200 km/ms
    assert next(lk for lk in network.links if lk.source == "agg-1" and lk.target == "agg-2").metric == 50


def load_network_from_inventory():
    from netpilot.model.formats import read_inventory

    return read_inventory(ROOT / "examples" / "metro_inventory.yaml")


def test_bundled_sample_is_what_the_documented_command_generates(te_data, tmp_path):
    base = te_data / "repetita" / "2016TopologyZooUCL_inverseCapacity"
    out = tmp_path / "sample.yaml"
    result = run("topo", "sample", "--backbone-graph", base / "Geant2012.graph",
                 "--backbone-demands", base / "Geant2012.0000.demands", "-o", out)
    assert result.exit_code == 0, result.output
    # The bundled file is that output with its backbone's IGP metrics tuned for the busy hour
    # (`bench/bundled_metrics.py --write`, which `make sample-network` runs after it): nothing else differs.
    generated, bundled = out.read_text().split("\n"), bundled_network_path().read_text().split("\n")
    metric_of = re.compile(r", metric: \d+}$")
    note = [line for line in bundled if line not in generated and not metric_of.search(line)]
    assert len(note) == 2 and "bundled_metrics.py" in note[0]
    assert [metric_of.sub("}", line) for line in bundled if line not in note] == \
        [metric_of.sub("}", line) for line in generated]
    network = build_sample_network(base / "Geant2012.graph", base / "Geant2012.0000.demands")
    assert 3 <= len(network.nodes_of_kind("edge_site")) <= 5
    assert len(network.nodes_of_kind("cell_site")) >= 40


def test_the_bundled_network_runs_metrics_tuned_for_its_busy_hour(te_data, tmp_path):
    """Its own busy-hour matrix fits (shortest paths on the shipped metrics load no link past 75 %, where the
    Repetita metrics `topo sample` keeps overload it at 1.297), and no single link or router failure ends worse
    than on those metrics."""
    import numpy as np

    from netpilot.optimize.te import igp
    from netpilot.optimize.te.problem import build_problem

    base = te_data / "repetita" / "2016TopologyZooUCL_inverseCapacity"
    generated = build_sample_network(base / "Geant2012.graph", base / "Geant2012.0000.demands")
    bundled = load_network(bundled_network_path())

    def loads(network) -> tuple[float, np.ndarray]:
        """The busy hour's MLU, and each single failure's (every router, every backbone circuit)."""
        arrays, problem = network.arrays(), build_problem(network)
        metric = arrays.metric.astype(np.int64)
        routers = np.array([n.kind == "router" for n in network.nodes])
        cases = [~((arrays.src == v) | (arrays.dst == v)) for v in np.flatnonzero(routers)]
        backbone = np.flatnonzero(routers[arrays.src] & routers[arrays.dst])
        cases += [arrays.up & ~(((arrays.src == arrays.src[e]) & (arrays.dst == arrays.dst[e])) |
                                ((arrays.src == arrays.dst[e]) & (arrays.dst == arrays.src[e]))) for e in backbone]
        return (float(igp.ecmp_utilisation(problem, metric).max()),
                np.array([igp.ecmp_utilisation(problem, metric, up).max() for up in cases]))

    busy_generated, failures_generated = loads(generated)
    busy_bundled, failures_bundled = loads(bundled)
    assert busy_generated > 1.2 and busy_bundled <= 0.75
    # Each failure: no worse than on Repetita's metrics, or at most 1.0 where those kept it under.
    assert (failures_bundled <= np.maximum(failures_generated, 1.0) + 1e-9).all()
    assert failures_bundled.max() <= failures_generated.max()
    # Only the backbone's metrics moved, and both directions of a circuit alike.
    arrays, before = bundled.arrays(), generated.arrays()
    routers = np.array([n.kind == "router" for n in bundled.nodes])
    access = ~(routers[arrays.src] & routers[arrays.dst])
    assert (arrays.metric[access] == before.metric[access]).all()
    reverse = igp.reverse_links(arrays)
    assert (arrays.metric[reverse >= 0] == arrays.metric[reverse[reverse >= 0]]).all()


def test_demo_serves_the_dashboard_and_stops(tmp_path):
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    netpilot = Path(sys.executable).parent / "netpilot"
    process = subprocess.Popen([str(netpilot), "demo", "--port", str(port), "--tick-seconds", "0.2",
                                "--db", str(tmp_path / "demo.db"), "--seconds", "12"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 300  # a guard against a hang, not a speed target: startup compiles kernels
        page = ""
        while time.time() < deadline and not page:
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read().decode()
            except OSError:
                time.sleep(0.5)
        assert "<title>netpilot</title>" in page
        output, _ = process.communicate(timeout=300)
    finally:
        process.kill()
    assert process.returncode == 0, output
    assert f"http://127.0.0.1:{port}/" in output and "approver" in output and "token" in output
    # The tokens are in a file only this user can read, as sign-in URLs with the token in the fragment, and
    # never on the terminal.
    tokens = tmp_path / "demo.db.tokens"
    assert tokens.stat().st_mode & 0o077 == 0
    lines = tokens.read_text().splitlines()
    assert len(lines) == 3 and all(f"http://127.0.0.1:{port}/#token=" in line for line in lines)
    assert not any(line.split("#token=")[1] in output for line in lines)


GOOD = """format: netpilot-network/1
nodes:
- {id: a}
- {id: b}
- {id: c}
links:
- {source: a, target: b, capacity: 10}
- {source: b, target: a, capacity: 10}
- {source: b, target: c, capacity: 10}
- {source: c, target: b, capacity: 10}
demands:
- {source: a, target: c, volume: 1}
"""

# (name, file name, content, expected fragments of the error: location and reason)
MALFORMED = [
    ("unknown node in a link", "n.yaml", GOOD.replace("{source: b, target: c, capacity: 10}",
                                                      "{source: b, target: x, capacity: 10}"),
     ["n.yaml:9", "links[2].target", "unknown node 'x'"]),
    ("duplicate node id", "n.yaml", GOOD.replace("- {id: c}", "- {id: c}\n- {id: a}"),
     ["n.yaml:6", "nodes[3].id", "duplicate node id 'a'"]),
    ("negative capacity", "n.yaml", GOOD.replace("{source: a, target: b, capacity: 10}",
                                                 "{source: a, target: b, capacity: -10}"),
     ["n.yaml:7", "links[0].capacity", "greater than or equal to 0"]),
    ("missing capacity", "n.yaml", GOOD.replace("{source: c, target: b, capacity: 10}", "{source: c, target: b}"),
     ["n.yaml:10", "links[3].capacity", "required field is missing"]),
    ("disconnected graph", "n.yaml", GOOD.replace("- {source: c, target: b, capacity: 10}\n", ""),
     ["n.yaml", "links", "not connected", "'c'"]),
    ("demand to a node that does not exist", "n.yaml", GOOD.replace("{source: a, target: c, volume: 1}",
                                                                    "{source: a, target: zz, volume: 1}"),
     ["n.yaml:12", "demands[0].target", "unknown node 'zz'"]),
    ("unknown field", "n.yaml", GOOD.replace("{id: b}", "{id: b, colour: red}"),
     ["n.yaml:4", "nodes[1].colour", "unknown field"]),
    ("bad node kind", "n.yaml", GOOD.replace("{id: b}", "{id: b, kind: toaster}"),
     ["n.yaml:4", "nodes[1].kind", "unknown kind 'toaster'"]),
    ("YAML syntax", "n.yaml", GOOD.replace("- {id: b}", "- {id: b"), ["n.yaml:", "invalid YAML"]),
    ("JSON syntax", "n.json", '{"nodes": [\n{"id": "a"},\n{"id": }\n]}', ["n.json:3", "invalid JSON"]),
    ("capacity not a number", "n.yaml", GOOD.replace("capacity: 10}\n- {source: b, target: c",
                                                     "capacity: lots}\n- {source: b, target: c"),
     ["n.yaml:8", "links[1].capacity", "lots"]),
    ("malformed Repetita edge line", "t.graph",
     "NODES 2\nlabel x y\n0_A 1 2\n1_B 3 4\n\nEDGES 2\nlabel src dest weight bw delay\nedge_0 0 1 1 100\n"
     "edge_1 1 0 1 100 5\n", ["t.graph:8", "label src dest weight bw delay"]),
    ("Repetita edge to a missing node", "t.graph",
     "NODES 2\nlabel x y\n0_A 1 2\n1_B 3 4\n\nEDGES 2\nlabel src dest weight bw delay\nedge_0 0 7 1 100 5\n"
     "edge_1 1 0 1 100 5\n", ["t.graph:8", "dest 7 is not a node"]),
    ("Repetita count mismatch", "t.graph",
     "NODES 3\nlabel x y\n0_A 1 2\n1_B 3 4\n\nEDGES 0\nlabel src dest weight bw delay\n",
     ["t.graph:6", "NODES says 3 but only 2 node lines"]),
    ("malformed GraphML", "z.graphml", "<graphml>\n<graph>\n<node id='a'>\n</graph>\n", ["z.graphml:4", "malformed"]),
    ("malformed SNDlib XML", "s.xml", '<network xmlns="http://sndlib.zib.de/network">\n<nodes>\n</network>',
     ["s.xml:3", "malformed XML"]),
    ("node-link link without capacity", "g.json",
     '{"directed": true, "nodes": [{"id": 0}, {"id": 1}], "links": [{"source": 0, "target": 1}]}',
     ["g.json", "links[0].capacity", "no capacity"]),
    ("inventory uplink to an unknown router", "inv.yaml",
     "format: netpilot-inventory/1\nrouters:\n- {id: r1}\ncells:\n- {id: c1, router: r9, uplink: 1G}\n",
     ["inv.yaml:5", "cells[0].router", "'r9' is not a router"]),
    ("inventory bandwidth that is not one", "inv.yaml",
     "format: netpilot-inventory/1\nrouters:\n- {id: r1}\n- {id: r2}\n"
     "circuits:\n- {a: r1, b: r2, capacity: 10Q, latency: 1ms}\n",
     ["inv.yaml:6", "circuits[0].capacity", "10Q"]),
    ("not a file", "missing.yaml", None, ["missing.yaml", "no such file"]),
]


@pytest.mark.parametrize(("name", "filename", "content", "expected"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_input_gives_a_located_error_and_no_traceback(tmp_path, name, filename, content, expected):
    path = tmp_path / filename
    if content is not None:
        path.write_text(content)
    result = run("topo", "validate", path)
    assert result.exit_code == 2, result.output
    for fragment in expected:
        assert fragment in result.stderr, f"{name}: {fragment!r} not in {result.stderr!r}"


def test_malformed_demands_file(tmp_path, te_data):
    base = te_data / "repetita" / "2016TopologyZooUCL_inverseCapacity"
    bad = tmp_path / "bad.demands"
    bad.write_text("DEMANDS 2\nlabel src dest bw\ndemand_0 0 1 5\ndemand_1 0 99 5\n")
    result = run("topo", "validate", base / "Abilene.graph", "--demands", bad)
    assert result.exit_code == 2
    assert "bad.demands:4" in result.stderr and "dest 99 is not a node" in result.stderr


def test_validate_json_lists_problems(tmp_path):
    path = tmp_path / "n.yaml"
    path.write_text(MALFORMED[0][2])
    result = run("topo", "validate", path, "--json")
    assert result.exit_code == 2
    problems = json.loads(result.stdout)["problems"]
    assert problems == [{"message": "link refers to unknown node 'x'", "file": str(path), "line": 9,
                         "field": "links[2].target"}]


def test_bad_option_values(zoo_dir):
    result = run("topo", "show", zoo_dir / "Abilene.graphml", "--metric", "random")
    assert result.exit_code == 2 and "--metric" in result.stderr
    result = run("topo", "show", zoo_dir / "Abilene.graphml", "--unit", "furlongs")
    assert result.exit_code == 2 and "--unit" in result.stderr
