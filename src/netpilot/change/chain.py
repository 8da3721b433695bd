"""The audit chain's secrets and anchor outside the database: the HMAC key and the witness of the chain's head.

Whoever can write the database can rewrite an unkeyed hash chain from the start, and can cut its end off
unseen. Each entry's hash here is an HMAC under a key kept in a file (0600) the database does not hold, and
the chain's length and head are written to a witness file after every append, so recomputing, forging and
truncating all show up when the audit compares the database with them. Writers on one host take the witness's
file lock around their transaction, which also keeps the witness in the order the database committed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

GENESIS = "0" * 64


def load_or_create_key(path: Path) -> bytes:
    """The key in ``path``, made (32 random bytes, mode 0600) when the file does not exist yet."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = bytes.fromhex(path.read_text().strip())
        if len(key) < 16:
            raise ValueError(f"{path}: the audit key is too short") from None
        return key
    with os.fdopen(fd, "w") as file:
        key = secrets.token_bytes(32)
        file.write(key.hex() + "\n")
        file.flush()
        os.fsync(file.fileno())
    return key


def entry_mac(key: bytes, previous: str, at: str, change_id: str, actor: str, action: str, detail: str) -> str:
    payload = "\n".join([previous, at, change_id, actor, action, detail])
    return hmac.new(key, payload.encode("utf-8"), hashlib.sha256).hexdigest()


def digest(value: object) -> str:
    """The SHA-256 of a value's canonical JSON: what binds intents, verification and approvals together."""
    return hashlib.sha256(canonical(value).encode("utf-8")).hexdigest()


def canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


@dataclass(frozen=True)
class Anchor:
    """The chain as the witness last saw it committed: its length and last hash."""

    length: int = 0
    head: str = GENESIS

    def accepts(self, hashes: list[str]) -> bool:
        """Whether a chain (its entries' hashes in order) is the one anchored: the same length and head, or
        one entry more whose predecessor is the head (the writer died between the database's commit and the
        witness's update; each transaction appends one entry)."""
        if len(hashes) not in (self.length, self.length + 1):
            return False
        return (hashes[self.length - 1] if self.length else GENESIS) == self.head


class Witness:
    """The anchor in a file beside the key (``path``), or in memory for a throw-away store (``path=None``)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._memory = Anchor()
        self._thread_lock = threading.RLock()
        self._depth = 0  # the file lock is taken once per thread however deeply transactions nest

    @contextlib.contextmanager
    def exclusive(self):
        """Held around a transaction that appends: one writer at a time on this host, witness in commit order."""
        with self._thread_lock:
            if self.path is None or self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(str(self.path) + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                self._depth += 1
                yield
            finally:
                self._depth -= 1
                os.close(fd)  # closing releases the lock

    def read(self) -> Anchor:
        if self.path is None:
            return self._memory
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return Anchor()
        return Anchor(int(data["length"]), str(data["head"]))

    def write(self, anchor: Anchor) -> None:
        """Replace the anchor atomically (a reader sees the old one or the new one). Not synced to disk: a
        process that dies leaves the write in the page cache; after a power loss the witness may lag the
        database, and the audit says so (it fails closed). Syncing would double each transition's cost."""
        if self.path is None:
            self._memory = anchor
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            json.dump({"length": anchor.length, "head": anchor.head}, file)
        os.replace(tmp, self.path)


@dataclass(frozen=True)
class TrustFiles:
    """Where a store's key and witness live: beside an SQLite file, in ``NETPILOT_TRUST_DIR`` (or
    ``~/.local/state/netpilot``) for PostgreSQL, nowhere for ``:memory:`` (a fresh key, a witness in memory)."""

    key: Path | None
    witness: Path | None

    @classmethod
    def for_location(cls, location: str, trust_dir: Path | None = None) -> TrustFiles:
        if location.startswith(("postgresql://", "postgres://")):
            folder = trust_dir or Path(os.environ.get("NETPILOT_TRUST_DIR")
                                       or Path.home() / ".local" / "state" / "netpilot")
            name = "changes-" + hashlib.sha256(location.encode()).hexdigest()[:16]
            return cls(folder / f"{name}.key", folder / f"{name}.witness")
        path = location.removeprefix("sqlite://") or ":memory:"
        if path == ":memory:":
            return cls(None, None)
        base = Path(path)
        if trust_dir is not None:
            base = trust_dir / base.name
        return cls(base.with_name(base.name + ".key"), base.with_name(base.name + ".witness"))
