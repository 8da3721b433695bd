"""The FRR lab as a driver (``frr-lab://NAME``): IGP metrics and link states through each router's frr.conf
(reloaded with ``frr-reload.py``), explicit paths as policy routing in each router's kernel (``paths``).

FRR 8.4's ospfd is not on the transactional northbound, so commit-confirmed is built here: every router's
running configuration and policy tables are saved to a journal on disk before anything changes, the delta is
applied, and a timer reverts every router unless ``confirm`` comes first. A netpilot that dies mid-apply leaves
the journal behind; ``recover`` puts every router back to its saved state, so each ends in its old or its new
configuration, never between, and says which.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

from netpilot.change.drivers.base import (
    INTENT_KINDS,
    Capabilities,
    ConfigDiff,
    DriverError,
    ForwardingCheck,
    NetworkDriver,
)
from netpilot.change.drivers.frr import paths
from netpilot.change.drivers.frr.lab import Lab, available
from netpilot.change.drivers.frr.render import interfaces, loopbacks, render_frr
from netpilot.model.network import Network

FRR_RELOAD = Path("/usr/lib/frr/frr-reload.py")
#: Lines frr-reload reports that the rendered config does not manage (daemon defaults, per-daemon hostnames).
_BOOKKEEPING = ("hostname", "no hostname", "ipv6 forwarding", "no ipv6 forwarding", "ip forwarding", "frr version",
                "log ")


class FrrDriver(NetworkDriver):
    """Real FRR routers of a lab. ``journal`` is the file that makes an apply recoverable after a crash;
    ``settle`` bounds how long :meth:`check` (and :meth:`commit`, with ``await_routes``) waits for OSPF to converge
    on what was committed."""

    schemes = ("frr-lab",)

    def __init__(self, lab: Lab, journal: str | Path, *, settle: float = 45.0, await_routes: bool = False) -> None:
        super().__init__()
        self.await_routes = await_routes
        self.lab = lab
        self.journal = Path(journal)
        self.settle = settle
        self.candidate: dict[str, str] | None = None
        self._candidate_network: Network | None = None
        self._running: Network | None = None
        self._lock = threading.RLock()

    @classmethod
    def from_url(cls, url: str, network: Network, **options: object) -> FrrDriver:
        """``frr-lab://NAME``: the lab NAME built from ``network`` (``netpilot lab up``); ``journal=`` in options
        (default ``netpilot-NAME-commit.json``), ``settle=`` seconds for :meth:`check`."""
        why = available()
        if why:
            raise DriverError(why)
        name = urlparse(url).netloc or urlparse(url).path.strip("/")
        journal = options.get("journal") or Path(f"netpilot-{name}-commit.json")
        return cls(Lab(name, network), Path(str(journal)), settle=float(str(options.get("settle", 45.0))))

    # --- state ------------------------------------------------------------------------------------------------

    def running(self) -> Network:
        """The twin of what the routers run: read from them (each interface's OSPF cost and shutdown, the policy
        tables) the first time, then what this driver committed or rolled back to."""
        with self._lock:
            if self._running is None:
                self._running = self.read()
            return self._running

    def read(self) -> Network:
        """The lab's network as its routers run it now, read from each router."""
        network = self.lab.network
        links = [lk.model_copy() for lk in network.links]
        index = {(lk.source, lk.target, lk.key): i for i, lk in enumerate(links)}
        for router, ifaces in interfaces(network).items():
            config = _blocks(_config_text(self.lab.vtysh(router, "show running-config")))
            for iface in ifaces:
                block = config.get(f"interface {iface.name}", [])
                i = next((index[k] for k in index if k[0] == router and k[1] == iface.peer), None)
                if i is None:
                    continue
                cost = next((int(line.split()[-1]) for line in block if line.startswith("ip ospf cost ")), None)
                update: dict[str, object] = {"state": "down" if "shutdown" in block else "up"}
                if cost is not None:
                    update["metric"] = cost
                links[i] = links[i].model_copy(update=update)
        per_router = {r: paths.installed(self.lab.namespace(r)) for r in self.lab.routers}
        return network.model_copy(update={"links": links, "policies": paths.read_policies(network, per_router)})

    def capabilities(self) -> Capabilities:
        """Every intent kind: metrics and link states through ospfd, explicit paths through policy routing
        (refused when the kernel has no policy routing)."""
        probe = subprocess.run(["ip", "-n", self.lab.namespace(self.lab.routers[0]), "rule", "show"],
                               capture_output=True, text=True, timeout=10)
        if probe.returncode != 0:
            return Capabilities(frozenset(INTENT_KINDS) - {"set_policies"},
                                {"set_policies": f"no policy routing on the routers: {probe.stderr.strip()}"})
        return Capabilities(frozenset(INTENT_KINDS))

    def check(self) -> ForwardingCheck:
        """Within ``settle`` seconds: every router's OSPF next hops to every loopback are those the twin of the
        running state predicts (with the cables the routers see down taken down), and every router's policy
        tables are the running policies' rendering."""
        deadline = time.monotonic() + self.settle
        while True:
            result = self._compare_forwarding()
            if result.ok or time.monotonic() > deadline:
                return result
            time.sleep(0.5)

    def _compare_forwarding(self) -> ForwardingCheck:
        from netpilot.change.apply import twin_next_hops

        network = self._as_seen(self.running())
        expected = twin_next_hops(network)
        loops = loopbacks(network)
        peer_of = {r: {i.name: i.peer for i in ifaces} for r, ifaces in interfaces(network).items()}
        mismatches = []
        for router in self.lab.routers:
            routes = self.lab.routes(router)
            for other, hops in expected[router].items():
                if not hops:
                    continue  # the twin has no route (cut off): OSPF has none either, or a stale one going
                seen = {peer_of[router].get(i, i) for i in routes.get(f"{loops[other]}/32", [])}
                if seen != hops:
                    mismatches.append(f"{router} -> {other}: next hops {sorted(seen) or 'none'}, the twin "
                                      f"predicted {sorted(hops)}")
        rendered = paths.render_paths(self.running())
        for router in self.lab.routers:
            if paths.installed(self.lab.namespace(router)) != paths.expected(rendered[router]):
                mismatches.append(f"{router}: its policy tables are not the running policies' "
                                  f"({len(rendered[router])} pair tables expected)")
        if mismatches:
            return ForwardingCheck(False, mismatches[0], tuple(mismatches))
        return ForwardingCheck(True, "every router forwards to every loopback as the twin predicted, and runs "
                                     f"the policy tables of {len(self.running().policies)} explicit-path pairs")

    def _as_seen(self, network: Network) -> Network:
        """``network`` with the cables a router sees down (carrier lost) down: the twin of what OSPF sees."""
        down = set()
        for router, ifaces in interfaces(network).items():
            counters = self.lab.counters(router)
            down |= {(router, i.peer) for i in ifaces if i.name in counters and not counters[i.name]["up"]}
        if not down:
            return network
        links = [lk.model_copy(update={"state": "down"}) if (lk.source, lk.target) in down or
                 (lk.target, lk.source) in down else lk for lk in network.links]
        return network.model_copy(update={"links": links})

    # --- a change ---------------------------------------------------------------------------------------------

    def _stage(self, candidate: Network) -> None:
        problems = paths.policy_problems(candidate)
        if problems:
            # Refused rather than dropped: a change that relies on explicit paths must not half-apply.
            raise DriverError(f"the FRR lab cannot carry these explicit paths: {'; '.join(problems[:3])}")
        self.candidate = render_frr(candidate)
        self._candidate_network = candidate

    def compare(self) -> ConfigDiff:
        """Per router, the lines frr-reload would remove and add, and the policy tables that change."""
        if self.candidate is None or self._candidate_network is None:
            raise DriverError("no candidate loaded")
        out = {}
        tables = paths.render_paths(self._candidate_network)
        for router, text in self.candidate.items():
            delta = self._reload(router, text, test=True)
            lines = [line for line in delta.splitlines() if line.strip() and not line.startswith("=")
                     and line.strip() not in ("Lines To Delete", "Lines To Add")
                     and not line.strip().startswith(_BOOKKEEPING)]
            if paths.installed(self.lab.namespace(router)) != paths.expected(tables[router]):
                lines += ["policy routing:"] + [f"  {line}" for line in paths.commands(tables[router])] + \
                    ([] if tables[router] else ["  (no explicit paths: every pair back on OSPF)"])
            if lines:
                out[router] = "\n".join(lines) + "\n"
        return ConfigDiff(out)

    def commit(self, confirm: float | None = None) -> None:
        """Save every router's running config and policy tables to the journal, apply the candidate, arm the
        revert timer; with ``await_routes``, wait (up to ``settle``) until the routers forward as its twin
        predicts."""
        if self.candidate is None or self._candidate_network is None:
            raise DriverError("no candidate loaded")
        with self._lock:
            before = self.get_state()
            previous = self.running()
            tables = paths.render_paths(self._candidate_network)
            self._write_journal({"state": "committing", "before": before, "candidate": self.candidate,
                                 "before_network": previous.model_dump(mode="json"), "applied": [],
                                 "deadline": None})
            applied = []
            for router, text in self.candidate.items():
                self._reload(router, text)
                self._install(router, tables[router])
                applied.append(router)
                self._update_journal(applied=applied)
            deadline = None if confirm is None else time.time() + confirm
            self._update_journal(state="committed" if confirm is not None else "confirmed", deadline=deadline)
            self._running, self.candidate, self._candidate_network = self._candidate_network, None, None
            self.reverted.clear()
            self._timer.arm(confirm, self._expire)
        if self.await_routes:
            # Returns once OSPF has moved the routes (within ``settle``): a measurement after the commit then sees
            # the change, not the seconds ospfd takes to re-originate its LSAs (at most one per 5 s).
            deadline = time.monotonic() + self.settle
            while not self.reverted.is_set() and not self._compare_forwarding().ok and \
                    time.monotonic() < deadline:
                time.sleep(0.5)

    def confirm(self) -> None:
        with self._lock:
            self._timer.cancel()
            if self.journal.exists():
                record = self._read_journal()
                if record is not None and record["state"] == "committed":
                    self._update_journal(state="confirmed")

    def rollback(self) -> None:
        """Every router back to the configuration and policy tables saved before the last commit (confirmed or
        not; nothing when it was rolled back already)."""
        with self._lock:
            self._timer.cancel()
            record = self._read_journal()
            if record is None or record["state"] == "rolled_back":
                return
            for router, saved in record["before"].items():
                text, tables = (saved["config"], saved["paths"]) if isinstance(saved, dict) else (saved, None)
                self._reload(router, text)
                if tables is not None:
                    self._restore_paths(router, tables)
            self._update_journal(state="rolled_back")
            self._running = Network.model_validate(record["before_network"]) if "before_network" in record \
                else None

    def _expire(self) -> None:
        self.rollback()
        self.reverted.set()

    def get_state(self) -> dict[str, dict]:
        """Per router, the running configuration as a loadable config file and its policy tables."""
        return {router: {"config": _config_text(self.lab.vtysh(router, "show running-config")),
                         "paths": [[table, rules, routes] for table, (rules, routes) in
                                   paths.installed(self.lab.namespace(router)).items()]}
                for router in self.lab.routers}

    # --- crash recovery ---------------------------------------------------------------------------------------

    def recover(self) -> str:
        """After a restart: a commit that was never confirmed is rolled back everywhere. Returns what happened."""
        record = self._read_journal()
        if record is None:
            return "no journal: nothing was in flight"
        state = record["state"]
        if state in ("committing", "committed"):
            if state == "committed" and record["deadline"] and time.time() < record["deadline"]:
                remaining = record["deadline"] - time.time()
                self._timer.arm(remaining, self._expire)
                return f"commit awaiting confirmation: {remaining:.0f} s left before it reverts"
            self.rollback()
            return (f"rolled back an unconfirmed change ({state}; applied to "
                    f"{len(record['applied'])} of {len(record['candidate'])} routers): every router has its old "
                    "configuration")
        return f"nothing to do: the last change was {state}"

    # --- internals --------------------------------------------------------------------------------------------

    def _install(self, router: str, tables: list[paths.PairTable]) -> None:
        try:
            paths.install(self.lab.namespace(router), tables)
        except RuntimeError as exc:
            raise DriverError(f"{router}: {exc}") from None

    def _restore_paths(self, router: str, saved: list) -> None:
        """Put back tables as :meth:`get_state` saved them."""
        namespace = self.lab.namespace(router)
        lines = paths.flush_commands(paths.installed(namespace))
        for table, rules, routes in saved:
            for destination, hops in routes.items():
                nexthops = " ".join(f"nexthop via {via} dev {dev} weight {weight}" for via, dev, weight in hops)
                lines.append(f"route replace {destination} table {table} proto static {nexthops}")
            lines += [f"rule add pref {table} from {s} to {d} lookup {table}" for s, d in rules]
        if lines:
            result = subprocess.run(["ip", "-n", namespace, "-batch", "-"], input="\n".join(lines) + "\n",
                                    capture_output=True, text=True, timeout=30)
            if result.returncode != 0:
                raise DriverError(f"{router}: restoring policy tables: {result.stderr.strip()[-400:]}")

    def _reload(self, router: str, text: str, *, test: bool = False) -> str:
        conf = self.journal.parent / f".{self.lab.namespace(router)}.candidate.conf"
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(text)
        result = subprocess.run(["python3", str(FRR_RELOAD), "--test" if test else "--reload", "--stdout",
                                 "--pathspace", self.lab.namespace(router), "--confdir", "/etc/frr",
                                 "--rundir", str(conf.parent), str(conf)],
                                capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise DriverError(f"{router}: frr-reload failed: {result.stderr.strip()[-400:]}")
        return result.stdout

    def _write_journal(self, record: dict) -> None:
        self.journal.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.journal.with_suffix(".tmp")
        tmp.write_text(json.dumps(record))
        tmp.replace(self.journal)  # atomic: a crash leaves the old or the new journal, never half of one

    def _update_journal(self, **changes: object) -> None:
        record = self._read_journal() or {}
        record.update(changes)
        self._write_journal(record)

    def _read_journal(self) -> dict | None:
        if not self.journal.exists():
            return None
        return json.loads(self.journal.read_text())


def _config_text(running: str) -> str:
    """``show running-config`` without vtysh's banner, so it can be loaded back."""
    marker = "Current configuration:"
    return running.split(marker, 1)[1].lstrip("\n") if marker in running else running


def _blocks(config: str) -> dict[str, list[str]]:
    """A config's top-level blocks (``interface np0``, ``router ospf``) -> their indented lines, stripped."""
    out: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in config.splitlines():
        if line and not line[0].isspace() and line not in ("!", "exit", "end"):
            current = out.setdefault(line.strip(), [])
        elif line.startswith(" ") and current is not None:
            current.append(line.strip())
        elif line in ("!", "exit"):
            current = None
    return out
