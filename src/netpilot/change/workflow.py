"""The change workflow as a persisted state machine with a two-person rule and a keyed, anchored audit chain.

proposed -> verified -> approved -> applying -> checking -> done | rolled_back;  any of the first three
-> rejected; done -> rolled_back when a person reverts a change that had been confirmed. A change that fails
verification is rejected by the verifier. The approver may not be the proposer (names compared normalised)
unless the policy auto-approves that kind of intent.

The audit chain, not the ``changes`` table, is the record: every transition appends an entry whose HMAC (key
outside the database, ``chain.py``) covers the previous entry's, the chain's length and head are anchored in a
witness file, the proposal's intents, their verification and the approval are bound by hash, and the audit
replays the state machine from the chain and cross-checks every ``changes`` row. Transitions are conditional
updates (``WHERE id = ? AND state = ?``) inside the transaction that appends their entry, after checking the
row against the change's own chain, so two processes cannot both move a change and an edited row moves nothing.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from netpilot.change.chain import GENESIS, Anchor, TrustFiles, Witness, canonical, digest, entry_mac, load_or_create_key
from netpilot.change.identity import IdentityError, normalise

STATES = ("proposed", "verified", "approved", "applying", "checking", "done", "rolled_back", "rejected")
TRANSITIONS = {
    "proposed": {"verified", "rejected"},
    "verified": {"approved", "rejected"},
    "approved": {"applying", "rejected"},
    "applying": {"checking", "rolled_back"},
    "checking": {"done", "rolled_back"},
    "done": {"rolled_back"},
    "rolled_back": set(),
    "rejected": set(),
}
TERMINAL = ("rejected", "rolled_back")
#: Actors that are the system, never a person: a person may not take these names.
SYSTEM_ACTORS = frozenset({"policy"})
__all__ = ["GENESIS", "STATES", "TRANSITIONS", "ChangeRecord", "ChangeStore", "Policy", "WorkflowError",
           "twin_diff"]


class WorkflowError(Exception):
    """A transition the workflow does not allow, with the reason."""


class Policy(BaseModel):
    """Which intents may skip the second person: named low-risk kinds, and only when verification passed."""

    model_config = ConfigDict(extra="forbid")
    auto_approve: list[str] = Field(default_factory=list, description="Intent kinds approved without a person.")


@dataclass(frozen=True)
class ChangeRecord:
    id: str
    state: str
    proposer: str
    why: str
    intents: list[dict]
    diff: list[dict]
    verification: dict | None
    approver: str | None
    created: str
    updated: str


@dataclass
class Replayed:
    """A change as its audit entries say it is: what was proposed, verified and approved, by whom."""

    state: str
    proposer: str
    intents: list[dict]
    intents_hash: str
    why_hash: str
    diff_hash: str
    verification: dict | None = None
    verification_hash: str | None = None
    verified_ok: bool = False
    approver: str | None = None
    approved_hash: str | None = None  # the intents' hash the approval named
    history: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AuditReport:
    """What the audit found: ``intact`` when the chain is whole, anchored and agrees with every row."""

    intact: bool
    entries: int
    problems: list[str]

    @property
    def detail(self) -> str:
        return self.problems[0] if self.problems else "every entry follows from the one before"


class ChangeStore:
    """Changes and their audit chain: SQLite (the embedded default: a file path or ``:memory:``) or PostgreSQL
    (``postgresql://...``, optionally ``?schema=name``; the tables live in that schema, ``netpilot`` unless
    named). Several stores may share one database: appends are serialised (the witness's file lock on this host,
    the database's write lock), so the chain stays one chain. The HMAC key and the witness live outside the
    database (``chain.TrustFiles``: beside an SQLite file, in ``trust_dir`` or ``NETPILOT_TRUST_DIR`` for
    PostgreSQL); ``key`` overrides the key file."""

    def __init__(self, location: str | Path = ":memory:", policy: Policy | None = None, *,
                 trust_dir: Path | None = None, key: bytes | None = None) -> None:
        location = str(location)
        self._sql = _open_backend(location)
        files = TrustFiles.for_location(location, trust_dir)
        self.trust_files = files
        if key is None:
            import secrets

            key = load_or_create_key(files.key) if files.key is not None else secrets.token_bytes(32)
        self._key = key
        self._witness = Witness(files.witness)
        # One connection shared by the loop's thread and the API's; the lock serialises them.
        self._lock = threading.RLock()
        self._tail: tuple[int, str] | None = None  # (length, head) while a transaction appends
        self.policy = policy or Policy()

    @property
    def backend(self) -> str:
        return self._sql.name

    # --- transitions ------------------------------------------------------------------------------------------

    def propose(self, intents: list[dict], proposer: str, why: str, diff: list[dict]) -> str:
        proposer = _person(proposer, "a change needs a proposer")
        change_id = uuid.uuid4().hex[:12]
        now = _now()
        intents, diff = _plain(intents), _plain(diff)
        with self._transaction():
            self._sql.execute("INSERT INTO changes VALUES (?, 'proposed', ?, ?, ?, ?, NULL, NULL, ?, ?)",
                              (change_id, proposer, why, canonical(intents), canonical(diff), now, now))
            self._audit(change_id, proposer, "propose", {"why": why, "intents": intents, "diff": diff,
                                                         "intents_hash": digest(intents)})
        return change_id

    def record_verification(self, change_id: str, report: dict, verifier: str = "netpilot", *,
                            auto_approve: bool = True) -> str:
        """Store the verification report of the proposal's intents (bound to them by hash); a failed one
        rejects the change. Returns the new state. ``auto_approve=False`` keeps the policy's auto-approval off
        (the assistant's proposals always wait for a second person)."""
        report = _plain(report)
        state = "verified" if report.get("ok") else "rejected"

        def only_proposed(record: ChangeRecord, chain: Replayed) -> dict:
            if record.state != "proposed":
                raise WorkflowError(f"change {change_id} is {record.state}; only a proposed change is verified")
            return {"intents_hash": chain.intents_hash, "report_hash": digest(report)}

        self._move(change_id, state, verifier, "verify", {"report": report}, verification=report,
                   guard=only_proposed)
        if state == "verified" and auto_approve and self._auto_approvable(self.get(change_id)):
            kinds = sorted({i["intent"] for i in self.get(change_id).intents})
            self._move(change_id, "approved", "policy", "approve", {"rule": "auto_approve", "kinds": kinds},
                       approver="policy", guard=self._binding)
            return "approved"
        return state

    def approve(self, change_id: str, approver: str) -> None:
        approver = _person(approver, "an approval needs the approver's name")

        def two_people(record: ChangeRecord, chain: Replayed) -> dict:
            if approver == normalise(chain.proposer):
                raise WorkflowError(f"{approver} proposed change {change_id} and may not approve it "
                                    "(two-person rule)")
            if record.state != "verified":
                raise WorkflowError(f"change {change_id} is {record.state}; only a verified change can be approved")
            return self._binding(record, chain)

        self._move(change_id, "approved", approver, "approve", {}, approver=approver, guard=two_people)

    def reject(self, change_id: str, actor: str, why: str) -> None:
        self._move(change_id, "rejected", actor, "reject", {"why": why})

    def advance(self, change_id: str, state: str, actor: str, detail: dict[str, Any] | None = None) -> None:
        """Applying, checking, done, rolled back: the driver's steps. Applying names the intents' hash, which
        must be the one verified and approved."""

        def bound(record: ChangeRecord, chain: Replayed) -> dict:
            if state != "applying":
                return {}
            if not chain.verified_ok or chain.approved_hash != chain.intents_hash:
                raise WorkflowError(f"change {change_id}: its audit trail holds no approval of these intents")
            return {"intents_hash": chain.intents_hash}

        self._move(change_id, state, actor, state, detail or {}, guard=bound)

    def annotate(self, change_id: str, actor: str, key: str, value: Any) -> None:
        """Attach evidence to a change (the alarms, causes and forecast behind it) without changing its state;
        it goes into the audit log like every transition."""
        self.get(change_id)
        with self._transaction():
            self._audit(change_id, actor, "annotate", {key: value})

    def annotations(self, change_id: str) -> dict[str, Any]:
        """Everything attached with ``annotate``, the latest value per key."""
        merged: dict[str, Any] = {}
        for entry in self.audit(change_id):
            if entry["action"] == "annotate":
                merged.update(entry["detail"])
        return merged

    def approved_intents(self, change_id: str) -> list[dict]:
        """The intents to apply for an approved change, taken from its audit chain (keyed, so not editable in
        the database) once the chain shows them proposed, verified and approved under one hash and the row
        agrees; ``WorkflowError`` otherwise."""
        chain = self.chain_of(change_id)
        if chain.state != "approved" or not chain.verified_ok or chain.approved_hash != chain.intents_hash:
            raise WorkflowError(f"change {change_id}: its audit trail does not show these intents verified and "
                                "approved")
        return chain.intents

    def chain_of(self, change_id: str) -> Replayed:
        """The change as its audit chain has it (HMACs checked, the row agreeing); ``WorkflowError`` otherwise."""
        with self._lock, self._witness.exclusive(), self._sql.transaction(lock=False):
            return self._consistent(change_id)[1]

    # --- reading ----------------------------------------------------------------------------------------------

    def get(self, change_id: str) -> ChangeRecord:
        with self._lock:
            rows = self._sql.execute("SELECT * FROM changes WHERE id = ?", (change_id,))
        if not rows:
            raise WorkflowError(f"no change {change_id!r}")
        return _record(rows[0])

    def list(self, state: str | None = None, *, limit: int | None = None, offset: int = 0,
             newest_first: bool = False) -> list[ChangeRecord]:
        sql = ("SELECT * FROM changes" + (" WHERE state = ?" if state else "")
               + (" ORDER BY created DESC, id DESC" if newest_first else " ORDER BY created, id"))
        params: tuple = (state,) if state else ()
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            params += (int(limit), int(offset))
        with self._lock:
            rows = self._sql.execute(sql, params)
        return [_record(row) for row in rows]

    def count(self, state: str | None = None) -> int:
        with self._lock:
            rows = self._sql.execute("SELECT COUNT(*) FROM changes" + (" WHERE state = ?" if state else ""),
                                     (state,) if state else ())
        return int(rows[0][0])

    def audit(self, change_id: str | None = None) -> list[dict]:
        sql = "SELECT seq, at, change_id, actor, action, detail, prev_hash, hash FROM audit"
        with self._lock:
            rows = self._sql.execute(sql + (" WHERE change_id = ?" if change_id else "") + " ORDER BY seq",
                                     (change_id,) if change_id else ())
        return [_entry(r) for r in rows]

    def verify_audit(self) -> tuple[bool, str]:
        """(intact, where it breaks first): see ``audit_report``."""
        report = self.audit_report()
        return report.intact, report.detail

    def audit_report(self) -> AuditReport:
        """Recompute every entry's HMAC and link from the start of the chain, compare the chain's length and
        head with the witness, replay the state machine from the chain (each transition allowed, intents,
        verification and approval bound by hash, approver not the proposer), and cross-check every row."""
        with self._lock, self._witness.exclusive():
            with self._sql.transaction(lock=False):
                raw = self._sql.execute("SELECT seq, at, change_id, actor, action, detail, prev_hash, hash FROM audit "
                                        "ORDER BY seq")
                rows = [_record(r) for r in self._sql.execute("SELECT * FROM changes")]
            anchor = self._witness.read()
        problems: list[str] = []
        previous = GENESIS
        changes: dict[str, Replayed] = {}
        for r in raw:
            seq = r[0]
            if r[6] != previous:
                problems.append(f"entry {seq} does not follow the entry before it (missing or reordered history)")
            if entry_mac(self._key, r[6], r[1], r[2], r[3], r[4], r[5]) != r[7]:
                problems.append(f"entry {seq} was altered after it was written (or written without the key)")
            else:
                problem = _replay(changes, _entry(r))
                if problem:
                    problems.append(problem)
            previous = r[7]
        if not anchor.accepts([r[7] for r in raw]):
            problems.append(f"the chain has {len(raw)} entries ending {previous[:12]}, the witness says "
                            f"{anchor.length} ending {anchor.head[:12]}: history was cut off or rewritten")
        by_id = {row.id: row for row in rows}
        for cid, chain in changes.items():
            row = by_id.get(cid)
            if row is None:
                problems.append(f"change {cid} is in the audit chain but has no row")
            else:
                mismatch = _row_mismatch(row, chain)
                if mismatch:
                    problems.append(f"change {cid}: the row disagrees with the audit chain ({mismatch})")
        for cid in by_id.keys() - changes.keys():
            problems.append(f"change {cid} has a row but no proposal in the audit chain")
        return AuditReport(not problems, len(raw), problems)

    def mark_owner(self, owner: str) -> None:
        """Record which tool created this database (``netpilot demo`` deletes only its own)."""
        with self._lock:
            self._sql.execute("INSERT INTO meta (key, value) VALUES ('created_by', ?) ON CONFLICT (key) DO NOTHING",
                              (owner,))

    # --- internals --------------------------------------------------------------------------------------------

    def _auto_approvable(self, change: ChangeRecord) -> bool:
        kinds = {i["intent"] for i in change.intents}
        return bool(kinds) and kinds <= set(self.policy.auto_approve)

    @staticmethod
    def _binding(record: ChangeRecord, chain: Replayed) -> dict:
        if record.state != "verified" or not chain.verified_ok:
            raise WorkflowError(f"change {record.id} is {record.state}; only a verified change can be approved")
        return {"intents_hash": chain.intents_hash, "verification_hash": chain.verification_hash}

    def _consistent(self, change_id: str) -> tuple[ChangeRecord, Replayed]:
        """The change's row and its chain, read inside the caller's transaction; ``WorkflowError`` when an
        entry's HMAC fails or the row says something the chain does not."""
        rows = self._sql.execute("SELECT * FROM changes WHERE id = ?", (change_id,))
        if not rows:
            raise WorkflowError(f"no change {change_id!r}")
        record = _record(rows[0])
        replayed: dict[str, Replayed] = {}
        for r in self._sql.execute("SELECT seq, at, change_id, actor, action, detail, prev_hash, hash FROM audit "
                                   "WHERE change_id = ? ORDER BY seq", (change_id,)):
            if entry_mac(self._key, r[6], r[1], r[2], r[3], r[4], r[5]) != r[7]:
                raise WorkflowError(f"change {change_id}: audit entry {r[0]} fails its HMAC; refusing to act on it")
            problem = _replay(replayed, _entry(r))
            if problem:
                raise WorkflowError(f"change {change_id}: {problem}; refusing to act on it")
        chain = replayed.get(change_id)
        if chain is None:
            raise WorkflowError(f"change {change_id} has no proposal in the audit chain; refusing to act on it")
        mismatch = _row_mismatch(record, chain)
        if mismatch:
            raise WorkflowError(f"change {change_id}: its row disagrees with its audit chain ({mismatch}); "
                                "refusing to act on it")
        return record, chain

    def _move(self, change_id: str, state: str, actor: str, action: str, detail: dict[str, Any], *,
              verification: dict | None = None, approver: str | None = None, guard=None) -> None:
        with self._transaction():
            record, chain = self._consistent(change_id)
            # An approval's or verification's guard explains a refusal better than the generic transition rule.
            bound = guard(record, chain) if guard is not None and action in ("approve", "verify") else None
            if state not in TRANSITIONS[record.state]:
                raise WorkflowError(f"change {change_id} is {record.state}; it cannot become {state}")
            if bound is None:
                bound = guard(record, chain) if guard is not None else {}
            moved = self._sql.update(
                "UPDATE changes SET state = ?, updated = ?, verification = COALESCE(?, verification), "
                "approver = COALESCE(?, approver) WHERE id = ? AND state = ?",
                (state, _now(), canonical(verification) if verification is not None else None, approver,
                 change_id, record.state))
            if moved != 1:  # someone moved it between our read and this update
                raise WorkflowError(f"change {change_id} is no longer {record.state}; it was moved meanwhile")
            self._audit(change_id, actor, action, {**detail, **bound, "from": record.state, "to": state})

    def _audit(self, change_id: str, actor: str, action: str, detail: dict[str, Any]) -> None:
        assert self._tail is not None, "audit entries are appended inside a transaction"
        length, previous = self._tail
        at = _now()
        text = canonical(detail)
        digest_ = entry_mac(self._key, previous, at, change_id, actor, action, text)
        self._sql.execute("INSERT INTO audit (at, change_id, actor, action, detail, prev_hash, hash) VALUES "
                          "(?, ?, ?, ?, ?, ?, ?)", (at, change_id, actor, action, text, previous, digest_))
        self._tail = (length + 1, digest_)

    @contextlib.contextmanager
    def _transaction(self):
        """The witness lock, then the database transaction, then the witness (after the commit, still under
        its lock, so the witness follows the commits in order). Each transaction appends at most one entry,
        so a writer that dies between the commit and the witness leaves the chain one entry ahead, which the
        audit accepts when that entry follows the anchored head."""
        with self._lock, self._witness.exclusive():
            if self._tail is not None:  # nested: the outer transaction appends and anchors
                yield
                return
            with self._sql.transaction():
                start = self._chain_tail()
                self._tail = start
                try:
                    yield
                    end = self._tail
                finally:
                    self._tail = None
            if end != start:
                self._witness.write(Anchor(end[0], end[1]))

    def _chain_tail(self) -> tuple[int, str]:
        rows = self._sql.execute("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1")
        head = rows[0][0] if rows else GENESIS
        anchor = self._witness.read()
        if head == anchor.head:
            return anchor.length, head
        # A crash after a commit, history edited, or a chain from before the witness: count, and let the audit
        # judge.
        return int(self._sql.execute("SELECT COUNT(*) FROM audit")[0][0]), head

    def close(self) -> None:
        self._sql.close()


def _person(name: str, missing: str) -> str:
    if not name or not str(name).strip():
        raise WorkflowError(missing)
    try:
        person = normalise(name)
    except IdentityError as exc:
        raise WorkflowError(str(exc)) from None
    if person in SYSTEM_ACTORS:
        raise WorkflowError(f"{person!r} is reserved for the system")
    return person


def _plain(value: Any) -> Any:
    """The value as JSON gives it back, so what is hashed is what is stored and read."""
    return json.loads(canonical(value))


def _record(row: tuple) -> ChangeRecord:
    return ChangeRecord(row[0], row[1], row[2], row[3], json.loads(row[4]), json.loads(row[5]),
                        json.loads(row[6]) if row[6] else None, row[7], row[8], row[9])


def _entry(r: tuple) -> dict:
    return {"seq": r[0], "at": r[1], "change_id": r[2], "actor": r[3], "action": r[4], "detail": json.loads(r[5]),
            "prev_hash": r[6], "hash": r[7]}


def _same_person(a: str, b: str) -> bool:
    try:
        return normalise(a) == normalise(b)
    except IdentityError:
        return a == b


def _replay(changes: dict[str, Replayed], entry: dict) -> str | None:
    """Apply one audit entry to the changes the chain has built so far; a problem's description, or None."""
    seq, cid, actor, action, d = entry["seq"], entry["change_id"], entry["actor"], entry["action"], entry["detail"]
    where = f"entry {seq} (change {cid}, {action})"
    if action == "propose":
        if cid in changes:
            return f"{where}: proposed twice"
        intents = d.get("intents")
        if not isinstance(intents, list) or d.get("intents_hash") != digest(intents):
            return f"{where}: the intents do not match their hash"
        changes[cid] = Replayed("proposed", actor, intents, d["intents_hash"], digest(d.get("why")),
                                digest(d.get("diff")), history=["proposed"])
        return None
    change = changes.get(cid)
    if change is None:
        return f"{where}: no proposal before it"
    if action == "annotate":
        return None
    source, target = d.get("from"), d.get("to")
    if source != change.state:
        return f"{where}: moves from {source} but the chain has the change {change.state}"
    if target not in TRANSITIONS.get(change.state, set()):
        return f"{where}: {change.state} cannot become {target}"
    if action == "verify":
        report = d.get("report") or {}
        if d.get("intents_hash") != change.intents_hash:
            return f"{where}: the verification names other intents"
        if (target == "verified") != bool(report.get("ok")):
            return f"{where}: the state does not follow from the report"
        change.verification, change.verification_hash = report, digest(report)
        change.verified_ok = target == "verified"
    elif action == "approve":
        if target != "approved" or not change.verified_ok:
            return f"{where}: approval of a change that did not pass verification"
        if d.get("intents_hash") != change.intents_hash or d.get("verification_hash") != change.verification_hash:
            return f"{where}: the approval names other intents or another verification"
        if actor in SYSTEM_ACTORS:
            if d.get("rule") != "auto_approve":
                return f"{where}: a system approval without a policy rule"
        elif _same_person(actor, change.proposer):
            return f"{where}: the proposer approved it (two-person rule)"
        change.approver, change.approved_hash = actor, d["intents_hash"]
    elif action == "reject":
        if target != "rejected":
            return f"{where}: a rejection to {target}"
    elif action in ("applying", "checking", "done", "rolled_back"):
        if action != target:
            return f"{where}: the step {action} moves to {target}"
        if target == "applying" and (change.approved_hash != change.intents_hash
                                     or d.get("intents_hash") != change.intents_hash):
            return f"{where}: applied without an approval of these intents"
    else:
        return f"{where}: unknown action"
    change.state = target
    change.history.append(target)
    return None


def _row_mismatch(row: ChangeRecord, chain: Replayed) -> str:
    if row.state != chain.state:
        return f"state {row.state}, chain {chain.state}"
    if row.proposer != chain.proposer:
        return "proposer"
    if row.approver != chain.approver:
        return "approver"
    if digest(row.intents) != chain.intents_hash:
        return "intents"
    if digest(row.why) != chain.why_hash:
        return "why"
    if digest(row.diff) != chain.diff_hash:
        return "diff"
    if (digest(row.verification) if row.verification is not None else None) != chain.verification_hash:
        return "verification"
    return ""


class _Sqlite:
    """The embedded default. The audit log's guard is a pair of triggers."""

    name = "sqlite"

    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript("""
            CREATE TABLE IF NOT EXISTS changes (id TEXT PRIMARY KEY, state TEXT NOT NULL, proposer TEXT NOT NULL,
                why TEXT NOT NULL, intents TEXT NOT NULL, diff TEXT NOT NULL, verification TEXT,
                approver TEXT, created TEXT NOT NULL, updated TEXT NOT NULL);
            CREATE INDEX IF NOT EXISTS changes_by_state ON changes (state, created);
            CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL,
                change_id TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, detail TEXT NOT NULL,
                prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
            CREATE INDEX IF NOT EXISTS audit_by_change ON audit (change_id, seq);
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
                BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
            CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
                BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
        """)

    def execute(self, sql: str, params: tuple = ()) -> list[tuple]:
        return self.db.execute(sql, params).fetchall()

    def update(self, sql: str, params: tuple = ()) -> int:
        """Rows the statement changed."""
        return self.db.execute(sql, params).rowcount

    @contextlib.contextmanager
    def transaction(self, lock: bool = True):
        # IMMEDIATE takes the write lock up front, so two processes cannot both read the chain's last hash;
        # a reader's deferred transaction reads one snapshot (WAL).
        self.db.execute("BEGIN IMMEDIATE" if lock else "BEGIN")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()


class _Postgres:
    """PostgreSQL (psycopg 3). The audit log's guard is a trigger that refuses UPDATE, DELETE and TRUNCATE."""

    name = "postgresql"

    def __init__(self, dsn: str, schema: str) -> None:
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - depends on the installed extras
            raise RuntimeError("the PostgreSQL change store needs psycopg: pip install 'netpilot[postgres]'") from exc
        from netpilot.telemetry.store import check_schema_name

        check_schema_name(schema)
        self.schema = schema
        self.db = psycopg.connect(dsn, autocommit=True)
        with self.db.transaction():
            self.db.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            self.db.execute(f"SET search_path TO {schema}")
            self.db.execute("""
                CREATE TABLE IF NOT EXISTS changes (id TEXT PRIMARY KEY, state TEXT NOT NULL, proposer TEXT NOT NULL,
                    why TEXT NOT NULL, intents TEXT NOT NULL, diff TEXT NOT NULL, verification TEXT,
                    approver TEXT, created TEXT NOT NULL, updated TEXT NOT NULL)""")
            self.db.execute("CREATE INDEX IF NOT EXISTS changes_by_state ON changes (state, created)")
            self.db.execute("""
                CREATE TABLE IF NOT EXISTS audit (seq BIGSERIAL PRIMARY KEY, at TEXT NOT NULL,
                    change_id TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, detail TEXT NOT NULL,
                    prev_hash TEXT NOT NULL, hash TEXT NOT NULL)""")
            self.db.execute("CREATE INDEX IF NOT EXISTS audit_by_change ON audit (change_id, seq)")
            self.db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            self.db.execute("""
                CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS
                $$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$""")
            self.db.execute("CREATE OR REPLACE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit "
                            "FOR EACH ROW EXECUTE FUNCTION audit_append_only()")
            self.db.execute("CREATE OR REPLACE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit "
                            "FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()")

    def execute(self, sql: str, params: tuple = ()) -> list[tuple]:
        cursor = self.db.execute(sql.replace("?", "%s"), params)
        return cursor.fetchall() if cursor.description else []

    def update(self, sql: str, params: tuple = ()) -> int:
        """Rows the statement changed."""
        return self.db.execute(sql.replace("?", "%s"), params).rowcount

    @contextlib.contextmanager
    def transaction(self, lock: bool = True):
        with self.db.transaction():
            if lock:
                # Another process may append too: the lock makes "read the last hash, append" one step, and
                # every transition appends, so transitions are serialised as well.
                self.db.execute("LOCK TABLE audit IN SHARE ROW EXCLUSIVE MODE")
            else:  # one snapshot for a reader
                self.db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            yield

    def drop(self) -> None:
        """Remove this store's schema and everything in it (throw-away schemas in tests)."""
        self.db.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")

    def close(self) -> None:
        self.db.close()


def _open_backend(location: str) -> _Sqlite | _Postgres:
    if location.startswith(("postgresql://", "postgres://")):
        from netpilot.telemetry.store import split_schema

        dsn, schema = split_schema(location, default="netpilot")
        return _Postgres(dsn, schema)
    return _Sqlite(location.removeprefix("sqlite://") or ":memory:")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def twin_diff(before, after) -> list[dict]:
    """Per link, what the change alters in the twin (state, metric), and per pair its explicit paths (on the
    source router, the policy's headend): the reviewable form until device configs are rendered."""
    changes = []
    for old, new in zip(before.links, after.links):
        for name in ("state", "metric"):
            if getattr(old, name) != getattr(new, name):
                changes.append({"device": old.source, "link": old.id, "field": name, "before": getattr(old, name),
                                "after": getattr(new, name)})

    def paths(network) -> dict[str, str]:
        return {f"{p.source}->{p.target}": ", ".join(
            f"{'-'.join(path.nodes)} ({path.weight / sum(q.weight for q in p.paths):.0%})" for path in p.paths)
            for p in network.policies}

    old_paths, new_paths = paths(before), paths(after)
    for pair in sorted(old_paths.keys() | new_paths.keys()):
        if old_paths.get(pair) != new_paths.get(pair):
            changes.append({"device": pair.split("->")[0], "link": pair, "field": "explicit paths",
                            "before": old_paths.get(pair, "IGP"), "after": new_paths.get(pair, "IGP")})
    return changes
