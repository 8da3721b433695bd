"""An FRR lab built from the twin: one network namespace per router, a veth pair per cable, zebra and ospfd in
each namespace with the configuration netpilot renders. Addresses exist only inside the lab's namespaces;
everything is named after the lab, and ``down`` removes it by name and PID."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from netpilot.change.drivers.frr.render import cables, interfaces, loopbacks, render_frr
from netpilot.model.network import Network

FRR_BIN = Path("/usr/lib/frr")
DAEMONS = ("zebra", "ospfd")
MAX_ROUTERS = 24


class LabError(RuntimeError):
    """The lab could not be built, or did not converge in time."""


def available() -> str | None:
    """None when a lab can run here, else why not."""
    if os.geteuid() != 0:
        return "the lab needs root (network namespaces)"
    if not (FRR_BIN / "zebra").exists() or shutil.which("vtysh") is None:
        return "FRR is not installed (apt-get install frr)"
    if shutil.which("ip") is None:
        return "iproute2 is not installed"
    return None


def _run(*args: str, check: bool = True, timeout: float = 20.0) -> subprocess.CompletedProcess:
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise LabError(f"{' '.join(args)}: {result.stderr.strip() or result.stdout.strip()}")
    return result


@dataclass
class Lab:
    """A lab named ``name`` (namespaces ``{name}-{router}``) for the routers of ``network``."""

    name: str
    network: Network

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or len(self.name) > 8:
            raise LabError("a lab name is up to 8 letters, digits or _")
        self.routers = [n.id for n in self.network.nodes if n.kind == "router"]
        if len(self.routers) > MAX_ROUTERS:
            raise LabError(f"{len(self.routers)} routers; the lab runs up to {MAX_ROUTERS}")

    # --- naming -----------------------------------------------------------------------------------------------

    def namespace(self, router: str) -> str:
        return f"{self.name}-{router}"

    def config_dir(self, router: str) -> Path:
        return Path("/etc/frr") / self.namespace(router)

    def run_dir(self, router: str) -> Path:
        return Path("/var/run/frr") / self.namespace(router)

    # --- lifecycle --------------------------------------------------------------------------------------------

    def up(self, *, converge_timeout: float = 60.0) -> None:
        """Create namespaces and links, start the daemons, wait until every OSPF adjacency is full."""
        self.down()
        configs = render_frr(self.network)
        for router in self.routers:
            ns = self.namespace(router)
            _run("ip", "netns", "add", ns)
            _run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
            # A new namespace does not forward: a router must.
            _run("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
            # A policy's next hop over a cable that is down is skipped (as the twin shares it among the others),
            # and flows spread over next hops by ports too (as the twin's even split holds over many flows).
            _run("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.conf.all.ignore_routes_with_linkdown=1",
                 "net.ipv4.fib_multipath_hash_policy=1")
        kinds = {n.id: n.kind for n in self.network.nodes}
        for n, (i, _j) in enumerate(cables(self.network)):
            link = self.network.links[i]
            if kinds[link.source] != "router" or kinds[link.target] != "router":
                continue
            left, right = f"{self.name}{n}a", f"{self.name}{n}b"
            _run("ip", "link", "add", left, "type", "veth", "peer", "name", right)
            for end, router in ((left, link.source), (right, link.target)):
                ns = self.namespace(router)
                _run("ip", "link", "set", end, "netns", ns)
                _run("ip", "netns", "exec", ns, "ip", "link", "set", end, "name", f"np{n}")
                _run("ip", "netns", "exec", ns, "ip", "link", "set", f"np{n}", "up")
        for router in self.routers:
            self._write_config(router, configs[router])
            self._start(router)
        self.wait_converged(converge_timeout)

    def _write_config(self, router: str, text: str) -> None:
        for folder in (self.config_dir(router), self.run_dir(router)):
            folder.mkdir(parents=True, exist_ok=True)
            shutil.chown(folder, "frr", "frr")
        path = self.config_dir(router) / "frr.conf"
        path.write_text(text)
        (self.config_dir(router) / "vtysh.conf").touch()
        for file in (path, self.config_dir(router) / "vtysh.conf"):
            shutil.chown(file, "frr", "frr")

    def _start(self, router: str) -> None:
        ns = self.namespace(router)
        for daemon in DAEMONS:
            _run("ip", "netns", "exec", ns, str(FRR_BIN / daemon), "-d", "-N", ns,
                 "-f", str(self.config_dir(router) / "frr.conf"), "-i", str(self.run_dir(router) / f"{daemon}.pid"))

    def pids(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for router in self.routers:
            for daemon in DAEMONS:
                pidfile = self.run_dir(router) / f"{daemon}.pid"
                if pidfile.exists():
                    with contextlib.suppress(ValueError):
                        out.setdefault(router, {})[daemon] = int(pidfile.read_text().strip())
        return out

    def down(self) -> None:
        """Stop this lab's daemons (by PID file) and remove its namespaces and files (by name)."""
        for daemons in self.pids().values():
            for pid in daemons.values():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        for daemons in self.pids().values():
            for pid in daemons.values():
                while time.monotonic() < deadline and _alive(pid):
                    time.sleep(0.05)
                if _alive(pid):
                    os.kill(pid, signal.SIGKILL)
        existing = set(_run("ip", "netns", "list", check=False).stdout.split())
        for router in self.routers:
            if self.namespace(router) in existing:
                # Anything else still running in the namespace (bounded traffic, a vtysh) goes with it.
                for pid in _run("ip", "netns", "pids", self.namespace(router), check=False).stdout.split():
                    with contextlib.suppress(ProcessLookupError, ValueError):
                        os.kill(int(pid), signal.SIGKILL)
                _run("ip", "netns", "del", self.namespace(router), check=False)
            shutil.rmtree(self.config_dir(router), ignore_errors=True)
            shutil.rmtree(self.run_dir(router), ignore_errors=True)
        # A build that died between creating a veth pair and moving its ends leaves them in this namespace.
        leftover = {entry.get("ifname") for entry in json.loads(_run("ip", "-j", "link", "show", check=False).stdout
                                                                or "[]")}
        for n in range(len(cables(self.network))):
            if f"{self.name}{n}a" in leftover:
                _run("ip", "link", "del", f"{self.name}{n}a", check=False)

    # --- looking at it ----------------------------------------------------------------------------------------

    def vtysh(self, router: str, *commands: str) -> str:
        args = ["vtysh", "-N", self.namespace(router)]
        for command in commands:
            args += ["-c", command]
        return _run(*args).stdout

    def neighbors(self, router: str) -> dict[str, str]:
        """OSPF neighbour router-id -> state."""
        data = json.loads(self.vtysh(router, "show ip ospf neighbor json") or "{}")
        out = {}
        for neighbor_id, entries in data.get("neighbors", {}).items():
            for entry in entries if isinstance(entries, list) else [entries]:
                out[neighbor_id] = entry.get("nbrState", entry.get("state", ""))
        return out

    def routes(self, router: str) -> dict[str, list[str]]:
        """Prefix -> next-hop interfaces of the installed OSPF routes."""
        data = json.loads(self.vtysh(router, "show ip route ospf json") or "{}")
        out = {}
        for prefix, entries in data.items():
            for entry in entries:
                if entry.get("selected"):
                    out[prefix] = sorted(h.get("interfaceName", "") for h in entry.get("nexthops", [])
                                         if h.get("active"))
        return out

    def expected_adjacencies(self) -> dict[str, int]:
        ifaces = interfaces(self.network)
        return {r: sum(1 for i in ifaces[r] if not i.passive and i.up) for r in self.routers}

    def wait_converged(self, timeout: float = 60.0) -> None:
        """Until every router has all its OSPF adjacencies full and a route to every other loopback."""
        expected = self.expected_adjacencies()
        loops = loopbacks(self.network)
        reachable = self._loopback_reachable()
        deadline = time.monotonic() + timeout
        while True:
            pending = []
            for router in self.routers:
                full = sum(1 for s in self.neighbors(router).values() if s.startswith("Full"))
                routes = self.routes(router)
                missing = [r for r in reachable[router] if f"{loops[r]}/32" not in routes]
                if full < expected[router] or missing:
                    pending.append(f"{router} ({full}/{expected[router]} adjacencies, {len(missing)} loopbacks)")
            if not pending:
                return
            if time.monotonic() > deadline:
                raise LabError(f"OSPF did not converge in {timeout:g} s: {', '.join(pending[:5])}")
            time.sleep(0.5)

    def _loopback_reachable(self) -> dict[str, list[str]]:
        """Per router, the other routers it can reach over up router-router links (what OSPF should learn)."""
        import networkx as nx

        graph = nx.Graph()
        graph.add_nodes_from(self.routers)
        for router, ifaces in interfaces(self.network).items():
            for iface in ifaces:
                if not iface.passive and iface.up:
                    graph.add_edge(router, iface.peer)
        return {r: [o for o in nx.node_connected_component(graph, r) if o != r] for r in self.routers}

    def traffic(self, source: str, target: str, *, mbps: float, seconds: float) -> subprocess.Popen:
        """Bounded UDP traffic from ``source``'s loopback to ``target``'s (iperf3 -t, inside the lab only).
        Returns the client; the server answers one test and exits. Wait on the client (or kill it) when done."""
        if shutil.which("iperf3") is None:
            raise LabError("iperf3 is not installed (apt-get install iperf3)")
        if not 0 < seconds <= 180 or not 0 < mbps <= 1000:
            raise LabError("lab traffic is bounded: 0 < seconds <= 180 and 0 < mbps <= 1000")
        loops = loopbacks(self.network)
        # A port per pair, so several flows may run at once (one to each target from each source).
        port = 5201 + self.routers.index(source) * MAX_ROUTERS + self.routers.index(target)
        subprocess.Popen(["ip", "netns", "exec", self.namespace(target), "iperf3", "-s", "-1", "-B", loops[target],
                          "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)  # the server binds before the client connects
        return subprocess.Popen(["ip", "netns", "exec", self.namespace(source), "timeout", str(int(seconds) + 10),
                                 "iperf3", "-c", loops[target], "-B", loops[source], "-p", str(port), "-u", "-b",
                                 f"{mbps}M", "-t", f"{seconds:g}"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)

    def stream(self, source: str, target: str, *, mbps: float, seconds: float) -> subprocess.Popen:
        """Bounded UDP packets from ``source``'s loopback to ``target``'s at ``mbps``, that go on through a
        reroute (iperf3 stops at the first unreachable destination, which a cut cable makes for the moment OSPF
        takes to converge). Nothing listens: the target's kernel drops them. Returns the sender (it exits by
        itself after ``seconds``; wait on it or kill it)."""
        if not 0 < seconds <= 180 or not 0 < mbps <= 1000:
            raise LabError("lab traffic is bounded: 0 < seconds <= 180 and 0 < mbps <= 1000")
        loops = loopbacks(self.network)
        return subprocess.Popen(["ip", "netns", "exec", self.namespace(source), "timeout", str(int(seconds) + 5),
                                 sys.executable, "-c", _SENDER, loops[source], loops[target], str(mbps),
                                 str(seconds)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def counters(self, router: str) -> dict[str, dict]:
        """Interface name -> {"tx_bytes", "rx_bytes", "up"} (``ip -s -j link`` inside the router's namespace)."""
        data = json.loads(_run("ip", "-n", self.namespace(router), "-s", "-j", "link", "show").stdout or "[]")
        return {entry["ifname"]: {"tx_bytes": entry.get("stats64", {}).get("tx", {}).get("bytes", 0),
                                  "rx_bytes": entry.get("stats64", {}).get("rx", {}).get("bytes", 0),
                                  "up": entry.get("operstate") == "UP"} for entry in data}

    def ping(self, source: str, target: str, count: int = 1) -> bool:
        """Whether ``source`` reaches ``target``'s loopback (from its own loopback)."""
        loops = loopbacks(self.network)
        result = _run("ip", "netns", "exec", self.namespace(source), "ping", "-c", str(count), "-W", "1", "-I",
                      loops[source], loops[target], check=False)
        return result.returncode == 0


#: The sender behind ``Lab.stream``: 1000-byte datagrams, paced, never faster than its rate; a send that fails (no
#: route yet) is skipped.
_SENDER = """
import socket, sys, time
source, target, mbps, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind((source, 0))
payload, gap = bytes(1000), 8000 / (mbps * 1e6)
start = time.monotonic()
deadline = start + seconds  # held up or not, it ends on time
sent = 0
while time.monotonic() < deadline:
    try:
        sock.sendto(payload, (target, 9))
    except OSError:  # unreachable while a cable is cut: keep pacing (iperf3 quits here), the counters tell
        pass
    sent += 1
    ahead = start + sent * gap - time.monotonic()
    if ahead > 0:
        time.sleep(ahead)
    elif ahead < -0.01:  # it was held up (a busy machine): on at the rate from now, not in a catch-up burst
        start -= ahead   # that a 0.2 s poll reads as a link at 115 % (seen on a 2-core machine under the tests)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"
