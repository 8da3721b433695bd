"""The change workflow as a persisted state machine with a two-person rule and a hash-chained audit log.

proposed -> verified -> approved -> applying -> checking -> done | rolled_back;  any of the first three
-> rejected; done -> rolled_back when a person reverts a change that had been confirmed. A change that fails
verification is rejected by the verifier. The approver may not be the proposer unless the policy auto-approves
that kind of intent. Every transition appends an audit entry whose
hash covers the previous entry's hash, so editing or deleting history breaks the chain where it happened.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

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
GENESIS = "0" * 64


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


class ChangeStore:
    """Changes and their audit trail: SQLite (the embedded default: a file path or ``:memory:``) or PostgreSQL
    (``postgresql://...``, optionally ``?schema=name``; the tables live in that schema, ``netpilot`` unless
    named). Several stores may share one PostgreSQL database: audit appends lock the table, so the hash chain
    stays one chain."""

    def __init__(self, location: str | Path = ":memory:", policy: Policy | None = None) -> None:
        self._sql = _open_backend(str(location))
        # One connection shared by the loop's thread and the API's; the lock serialises them.
        self._lock = threading.RLock()
        self.policy = policy or Policy()

    @property
    def backend(self) -> str:
        return self._sql.name

    # --- transitions ------------------------------------------------------------------------------------------

    def propose(self, intents: list[dict], proposer: str, why: str, diff: list[dict]) -> str:
        if not proposer:
            raise WorkflowError("a change needs a proposer")
        change_id = uuid.uuid4().hex[:12]
        now = _now()
        with self._transaction():
            self._sql.execute("INSERT INTO changes VALUES (?, 'proposed', ?, ?, ?, ?, NULL, NULL, ?, ?)",
                              (change_id, proposer, why, json.dumps(intents), json.dumps(diff), now, now))
            self._audit(change_id, proposer, "propose", {"why": why, "intents": intents, "diff": diff})
        return change_id

    def record_verification(self, change_id: str, report: dict, verifier: str = "netpilot", *,
                            auto_approve: bool = True) -> str:
        """Store the verification report; a failed one rejects the change. Returns the new state.
        ``auto_approve=False`` keeps the policy's auto-approval off (the assistant's proposals always wait for a
        second person)."""
        change = self.get(change_id)
        state = "verified" if report.get("ok") else "rejected"
        self._move(change, state, verifier, "verify", {"report": report}, verification=report)
        if state == "verified" and auto_approve and self._auto_approvable(change):
            self._move(self.get(change_id), "approved", "policy", "approve",
                       {"rule": "auto_approve", "kinds": sorted({i["intent"] for i in change.intents})},
                       approver="policy")
            return "approved"
        return state

    def approve(self, change_id: str, approver: str) -> None:
        change = self.get(change_id)
        if not approver:
            raise WorkflowError("an approval needs the approver's name")
        if approver == change.proposer:
            raise WorkflowError(f"{approver} proposed change {change_id} and may not approve it (two-person rule)")
        if change.state != "verified":
            raise WorkflowError(f"change {change_id} is {change.state}; only a verified change can be approved")
        self._move(change, "approved", approver, "approve", {}, approver=approver)

    def reject(self, change_id: str, actor: str, why: str) -> None:
        self._move(self.get(change_id), "rejected", actor, "reject", {"why": why})

    def advance(self, change_id: str, state: str, actor: str, detail: dict[str, Any] | None = None) -> None:
        """Applying, checking, done, rolled back: the driver's steps."""
        self._move(self.get(change_id), state, actor, state, detail or {})

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

    # --- reading ----------------------------------------------------------------------------------------------

    def get(self, change_id: str) -> ChangeRecord:
        with self._lock:
            rows = self._sql.execute("SELECT * FROM changes WHERE id = ?", (change_id,))
        if not rows:
            raise WorkflowError(f"no change {change_id!r}")
        return _record(rows[0])

    def list(self, state: str | None = None) -> list[ChangeRecord]:
        with self._lock:
            rows = self._sql.execute("SELECT * FROM changes" + (" WHERE state = ?" if state else "")
                                     + " ORDER BY created", (state,) if state else ())
        return [_record(row) for row in rows]

    def audit(self, change_id: str | None = None) -> list[dict]:
        sql = "SELECT seq, at, change_id, actor, action, detail, prev_hash, hash FROM audit"
        with self._lock:
            rows = self._sql.execute(sql + (" WHERE change_id = ?" if change_id else "") + " ORDER BY seq",
                                     (change_id,) if change_id else ())
        return [{"seq": r[0], "at": r[1], "change_id": r[2], "actor": r[3], "action": r[4],
                 "detail": json.loads(r[5]), "prev_hash": r[6], "hash": r[7]} for r in rows]

    def verify_audit(self) -> tuple[bool, str]:
        """(intact, where it breaks): recompute every hash from the start of the chain."""
        previous = GENESIS
        for entry in self.audit():
            if entry["prev_hash"] != previous:
                return False, f"entry {entry['seq']} does not follow entry before it (missing or reordered history)"
            expected = _entry_hash(previous, entry["at"], entry["change_id"], entry["actor"], entry["action"],
                                   entry["detail"])
            if expected != entry["hash"]:
                return False, f"entry {entry['seq']} was altered after it was written"
            previous = entry["hash"]
        return True, "every entry follows from the one before"

    # --- internals --------------------------------------------------------------------------------------------

    def _auto_approvable(self, change: ChangeRecord) -> bool:
        kinds = {i["intent"] for i in change.intents}
        return bool(kinds) and kinds <= set(self.policy.auto_approve)

    def _move(self, change: ChangeRecord, state: str, actor: str, action: str, detail: dict[str, Any], *,
              verification: dict | None = None, approver: str | None = None) -> None:
        if state not in TRANSITIONS[change.state]:
            raise WorkflowError(f"change {change.id} is {change.state}; it cannot become {state}")
        with self._transaction():
            self._sql.execute("UPDATE changes SET state = ?, updated = ?, verification = COALESCE(?, verification), "
                              "approver = COALESCE(?, approver) WHERE id = ?",
                              (state, _now(), json.dumps(verification) if verification is not None else None,
                               approver, change.id))
            self._audit(change.id, actor, action, {**detail, "from": change.state, "to": state})

    def _audit(self, change_id: str, actor: str, action: str, detail: dict[str, Any]) -> None:
        rows = self._sql.execute("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1")
        previous = rows[0][0] if rows else GENESIS
        at = _now()
        digest = _entry_hash(previous, at, change_id, actor, action, detail)
        self._sql.execute("INSERT INTO audit (at, change_id, actor, action, detail, prev_hash, hash) VALUES "
                          "(?, ?, ?, ?, ?, ?, ?)", (at, change_id, actor, action, _canonical(detail), previous,
                                                    digest))

    @contextlib.contextmanager
    def _transaction(self):
        with self._lock, self._sql.transaction():
            yield

    def close(self) -> None:
        self._sql.close()


def _record(row: tuple) -> ChangeRecord:
    return ChangeRecord(row[0], row[1], row[2], row[3], json.loads(row[4]), json.loads(row[5]),
                        json.loads(row[6]) if row[6] else None, row[7], row[8], row[9])


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
            CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
                BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
            CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
                BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
        """)

    def execute(self, sql: str, params: tuple = ()) -> list[tuple]:
        return self.db.execute(sql, params).fetchall()

    @contextlib.contextmanager
    def transaction(self):
        # IMMEDIATE takes the write lock up front, so two processes cannot both read the chain's last hash.
        self.db.execute("BEGIN IMMEDIATE")
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

    @contextlib.contextmanager
    def transaction(self):
        with self.db.transaction():
            # Another process may append too: the lock makes "read the last hash, append" one step.
            self.db.execute("LOCK TABLE audit IN SHARE ROW EXCLUSIVE MODE")
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


def _canonical(detail: dict[str, Any]) -> str:
    return json.dumps(detail, sort_keys=True, separators=(",", ":"), default=str)


def _entry_hash(previous: str, at: str, change_id: str, actor: str, action: str, detail: dict[str, Any]) -> str:
    payload = "\n".join([previous, at, change_id, actor, action, _canonical(detail)])
    return hashlib.sha256(payload.encode()).hexdigest()


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
