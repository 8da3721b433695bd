"""The driver contract: what netpilot asks of a network it changes, in the spirit of NAPALM's ``NetworkDriver``,
the typed answers it gets, and ``open_driver(url)`` that finds the driver for a URL's scheme.

A driver holds a *running* state (the twin of what the devices run: IGP metrics, link states and explicit path
policies, as a :class:`~netpilot.model.network.Network`) and at most one *candidate*. A change goes
``load_candidate`` -> ``compare`` -> ``commit(confirm=seconds)`` -> ``confirm`` (or ``rollback``, or the timer
reverting it by itself). ``capabilities`` says which intent kinds the devices take, so nothing is proposed that
cannot be applied; ``check`` compares what the devices forward with what the twin of ``running()`` predicts.

A new driver is one module in this package (``netpilot/change/drivers/``, sub-packages included) with a
:class:`NetworkDriver` subclass naming its URL ``schemes``, plus its test.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar
from urllib.parse import urlparse

from netpilot.change.intents import Intent, apply_intents
from netpilot.model.network import Network

#: Every intent kind netpilot has (``netpilot.change.intents``).
INTENT_KINDS = ("set_link_state", "set_metric", "drain_node", "apply_metrics", "set_policies")
#: The intent kinds a change of metrics (but not of link states or paths) can be expressed in.
METRIC_KINDS = ("set_metric", "drain_node", "apply_metrics")


class DriverError(RuntimeError):
    """A device refused or failed a step, or the driver cannot express a change (the message says which and
    why)."""


@dataclass(frozen=True)
class Capabilities:
    """The intent kinds a driver's devices take; ``refused`` says why each other kind is not taken."""

    intents: frozenset[str]
    refused: Mapping[str, str] = field(default_factory=dict)

    def accepts(self, kind: str) -> bool:
        return kind in self.intents

    def refusal(self, kinds: Iterable[str]) -> str | None:
        """None when every kind is taken, else why the first one that is not is refused."""
        for kind in kinds:
            if kind not in self.intents:
                return f"{kind}: {self.refused.get(kind, 'not supported by this driver')}"
        return None


@dataclass(frozen=True)
class ConfigDiff:
    """Per device whose configuration a candidate changes, the change as text a person reviews."""

    devices: Mapping[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.devices)

    def as_dict(self) -> dict[str, str]:
        """For the audit trail (JSON)."""
        return dict(self.devices)


@dataclass(frozen=True)
class ForwardingCheck:
    """Whether the devices forward as the twin of the running state predicts; ``mismatches`` names each
    device and destination (or pair) that does not."""

    ok: bool
    detail: str
    mismatches: tuple[str, ...] = ()


def change_kinds(before: Network, after: Network) -> list[str]:
    """The intent kinds it takes to go from ``before`` to ``after`` (same nodes and links)."""
    kinds = []
    if [lk.state for lk in before.links] != [lk.state for lk in after.links]:
        kinds.append("set_link_state")
    if [lk.metric for lk in before.links] != [lk.metric for lk in after.links]:
        kinds.append("set_metric")
    if before.policies != after.policies:
        kinds.append("set_policies")
    return kinds


class _ConfirmTimer:
    """Calls ``revert`` unless cancelled within the confirm window."""

    def __init__(self) -> None:
        self._timer: threading.Timer | None = None

    def arm(self, seconds: float | None, revert: Callable[[], None]) -> None:
        self.cancel()
        if seconds is not None:
            self._timer = threading.Timer(seconds, revert)
            self._timer.daemon = True
            self._timer.start()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class NetworkDriver(ABC):
    """A network netpilot changes. Subclasses implement the abstract methods; ``schemes`` names the URL schemes
    ``open_driver`` hands to :meth:`from_url`.

    ``reverted`` is set when a commit's confirm window ran out and the driver put the old state back."""

    schemes: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        self.reverted = threading.Event()
        self._timer = _ConfirmTimer()

    @classmethod
    def from_url(cls, url: str, network: Network, **options: object) -> NetworkDriver:
        """The driver for ``url`` (one of ``schemes``), whose devices were built from ``network``."""
        raise DriverError(f"{cls.__name__} cannot be opened from a URL")

    # --- state ------------------------------------------------------------------------------------------------

    @abstractmethod
    def running(self) -> Network:
        """The twin of what the devices run now: the network with its IGP metrics, link states (as configured)
        and explicit path policies. The same object until the running state changes, so callers may cache
        what they derive from it by identity."""

    @abstractmethod
    def capabilities(self) -> Capabilities:
        """The intent kinds this driver can apply, and why not the others."""

    def check(self) -> ForwardingCheck:
        """Whether the devices forward as the twin of ``running()`` predicts (the post-check of a commit).
        A driver whose devices *are* the twin has nothing to compare."""
        return ForwardingCheck(True, "the devices are the twin: they run what was committed")

    # --- a change ---------------------------------------------------------------------------------------------

    def load_candidate(self, candidate: Network | Sequence[Intent]) -> None:
        """Stage a change: the network as it should run, or intents applied to ``running()``. Raises
        :class:`DriverError` when the change needs an intent kind the driver does not take."""
        if not isinstance(candidate, Network):
            candidate = apply_intents(self.running(), list(candidate))
        refusal = self.capabilities().refusal(change_kinds(self.running(), candidate))
        if refusal is not None:
            raise DriverError(f"{type(self).__name__} cannot apply this change: {refusal}")
        self._stage(candidate)

    @abstractmethod
    def _stage(self, candidate: Network) -> None:
        """Keep ``candidate`` (already checked against the capabilities) as the change to commit."""

    @abstractmethod
    def compare(self) -> ConfigDiff:
        """What committing the candidate would change, per device. Raises DriverError without a candidate."""

    @abstractmethod
    def commit(self, confirm: float | None = None) -> None:
        """Make the candidate the running state. With ``confirm`` seconds, the driver reverts by itself (and sets
        ``reverted``) unless :meth:`confirm` comes first."""

    @abstractmethod
    def confirm(self) -> None:
        """Keep the last commit: stop its revert timer."""

    @abstractmethod
    def rollback(self) -> None:
        """Put back the running state from before the last commit (nothing when there is none to undo)."""

    def close(self) -> None:
        """Stop any revert timer; the devices keep what they run."""
        self._timer.cancel()


def driver_classes() -> dict[str, type[NetworkDriver]]:
    """URL scheme -> driver class, from every module of this package."""
    import netpilot.change.drivers as package

    found: dict[str, type[NetworkDriver]] = {}
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, NetworkDriver) and value.__module__ == module.__name__:
                for scheme in value.schemes:
                    found[scheme] = value
    return found


def open_driver(url: str, network: Network, **options: object) -> NetworkDriver:
    """The driver for ``url``: ``sim://`` (the simulator; ``simulator=`` in options), ``twin://`` (the twin
    alone), ``frr-lab://NAME`` (an FRR lab built from ``network``), or whatever scheme a driver module names."""
    scheme = urlparse(url).scheme
    classes = driver_classes()
    if scheme not in classes:
        raise DriverError(f"no driver for {url!r}: schemes are {', '.join(sorted(classes))}")
    return classes[scheme].from_url(url, network, **options)
