"""Drivers behind one small interface, in the spirit of NAPALM: ``load_candidate``, ``compare``,
``commit(confirm_seconds)``, ``confirm``, ``rollback``, ``get_state``: the twin (and the simulator behind it) and FRR.

FRR 8.4's ospfd is not on the transactional northbound, so commit-confirmed is built here: the running
configuration of every router is saved to a journal on disk before anything changes, the delta is applied with
``frr-reload.py``, and a timer reverts every router unless ``confirm`` comes first. A netpilot that dies
mid-apply leaves the journal behind; ``recover`` puts every router back to its saved configuration, so each
ends in its old or its new configuration, never between, and says which.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Protocol

from netpilot.change.lab import Lab
from netpilot.change.render import config_diff, render_frr
from netpilot.model.network import Network

FRR_RELOAD = Path("/usr/lib/frr/frr-reload.py")
#: Lines frr-reload reports that the rendered config does not manage (daemon defaults, per-daemon hostnames).
_BOOKKEEPING = ("hostname", "no hostname", "ipv6 forwarding", "no ipv6 forwarding", "ip forwarding", "frr version",
                "log ")


class DriverError(RuntimeError):
    """A device refused or failed a step (the message says which device and why)."""


class Driver(Protocol):
    def get_state(self) -> dict[str, str]: ...
    def load_candidate(self, candidate: Network) -> None: ...
    def compare(self) -> dict[str, str]: ...
    def commit(self, confirm_seconds: float | None = None) -> None: ...
    def confirm(self) -> None: ...
    def rollback(self) -> None: ...


class _ConfirmTimer:
    """Reverts unless confirmed in time."""

    def __init__(self) -> None:
        self._timer: threading.Timer | None = None

    def arm(self, seconds: float | None, revert) -> None:
        self.cancel()
        if seconds is not None:
            self._timer = threading.Timer(seconds, revert)
            self._timer.daemon = True
            self._timer.start()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class TwinDriver:
    """The simulator's twin as a device: the running state is a Network."""

    def __init__(self, network: Network) -> None:
        self.running = network
        self.candidate: Network | None = None
        self._previous: Network | None = None
        self._timer = _ConfirmTimer()
        self.reverted = threading.Event()

    def get_state(self) -> dict[str, str]:
        return render_frr(self.running)

    def load_candidate(self, candidate: Network) -> None:
        self.candidate = candidate

    def compare(self) -> dict[str, str]:
        if self.candidate is None:
            raise DriverError("no candidate loaded")
        return config_diff(self.running, self.candidate)

    def commit(self, confirm_seconds: float | None = None) -> None:
        if self.candidate is None:
            raise DriverError("no candidate loaded")
        self._previous, self.running, self.candidate = self.running, self.candidate, None
        self.reverted.clear()
        self._timer.arm(confirm_seconds, self._expire)

    def _expire(self) -> None:
        self.rollback()
        self.reverted.set()

    def confirm(self) -> None:
        self._timer.cancel()
        self._previous = None

    def rollback(self) -> None:
        self._timer.cancel()
        if self._previous is not None:
            self.running, self._previous = self._previous, None


class FrrDriver:
    """Real FRR routers of a lab. ``journal`` is the file that makes an apply recoverable after a crash."""

    def __init__(self, lab: Lab, journal: str | Path) -> None:
        self.lab = lab
        self.journal = Path(journal)
        self.candidate: dict[str, str] | None = None
        self._timer = _ConfirmTimer()
        self._lock = threading.Lock()
        self.reverted = threading.Event()

    # --- the interface ----------------------------------------------------------------------------------------

    def get_state(self) -> dict[str, str]:
        """Per router, the running configuration as a loadable config file."""
        return {router: _config_text(self.lab.vtysh(router, "show running-config")) for router in self.lab.routers}

    def load_candidate(self, candidate: Network) -> None:
        if candidate.policies:
            # Refused rather than dropped: a change that relies on explicit paths must not half-apply.
            raise DriverError("the FRR driver renders IGP configuration only; explicit path policies (SR-TE) "
                              f"for {len(candidate.policies)} pairs cannot be applied through it")
        self.candidate = render_frr(candidate)

    def compare(self) -> dict[str, str]:
        """Per router, the lines frr-reload would remove and add (empty routers left out)."""
        if self.candidate is None:
            raise DriverError("no candidate loaded")
        out = {}
        for router, text in self.candidate.items():
            delta = self._reload(router, text, test=True)
            lines = [line for line in delta.splitlines() if line.strip() and not line.startswith("=")
                     and line.strip() not in ("Lines To Delete", "Lines To Add")
                     and not line.strip().startswith(_BOOKKEEPING)]
            if lines:
                out[router] = "\n".join(lines) + "\n"
        return out

    def commit(self, confirm_seconds: float | None = None) -> None:
        """Save every router's running config to the journal, apply the candidate, arm the revert timer."""
        if self.candidate is None:
            raise DriverError("no candidate loaded")
        with self._lock:
            before = self.get_state()
            self._write_journal({"state": "committing", "before": before, "candidate": self.candidate,
                                 "applied": [], "deadline": None})
            applied = []
            for router, text in self.candidate.items():
                self._reload(router, text)
                applied.append(router)
                self._update_journal(applied=applied)
            deadline = None if confirm_seconds is None else time.time() + confirm_seconds
            self._update_journal(state="committed" if confirm_seconds is not None else "confirmed",
                                 deadline=deadline)
            self.candidate = None
            self.reverted.clear()
            self._timer.arm(confirm_seconds, self._expire)

    def confirm(self) -> None:
        with self._lock:
            self._timer.cancel()
            if self.journal.exists():
                self._update_journal(state="confirmed")

    def rollback(self) -> None:
        """Every router back to the configuration saved before the commit."""
        with self._lock:
            self._timer.cancel()
            record = self._read_journal()
            if record is None or record["state"] in ("confirmed", "rolled_back"):
                return
            for router, text in record["before"].items():
                self._reload(router, text)
            self._update_journal(state="rolled_back")

    def _expire(self) -> None:
        self.rollback()
        self.reverted.set()

    # --- crash recovery ---------------------------------------------------------------------------------------

    def recover(self) -> str:
        """After a restart: an apply that was never confirmed is rolled back everywhere. Returns what happened."""
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


class SimulatorDriver(TwinDriver):
    """The simulator as the network under control: committing a candidate pushes its IGP metrics and explicit
    path policies into the running simulation, and a rollback pushes the previous ones back."""

    def __init__(self, network: Network, simulator) -> None:
        super().__init__(network)
        self.simulator = simulator

    def commit(self, confirm_seconds: float | None = None) -> None:
        super().commit(confirm_seconds)
        self._push()

    def rollback(self) -> None:
        super().rollback()
        self._push()

    def _push(self) -> None:
        self.simulator.set_metrics(self.running.arrays().metric)
        self.simulator.set_policies(self.running.policies)
