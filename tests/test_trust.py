"""Issue 26's probes, each a test: no path around verification and approval, a keyed and anchored audit,
transitions safe against races and crashes, CLI identity that cannot be typed, and bounded requests."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, precondition, rule
from typer.testing import CliRunner

from conftest import postgres_available
from netpilot.api.app import create_app, make_tokens
from netpilot.change.actuate import approved_intents, begin_apply, reconcile
from netpilot.change.drivers import TwinDriver
from netpilot.change.identity import TokenBook
from netpilot.change.intents import IntentList, apply_intents
from netpilot.change.workflow import ChangeStore, WorkflowError
from netpilot.cli import app as cli
from netpilot.model.io import load_network
from netpilot.model.network import Link, Network, Router
from netpilot.model.sample import bundled_network_path
from netpilot.scenarios.live import LiveAutopilot

GOOD = {"ok": True, "checks": []}
BAD = {"ok": False, "checks": [{"name": "black holes", "ok": False, "detail": "a -> c dropped"}]}
METRIC = [{"intent": "set_metric", "source": "a", "target": "b", "metric": 20}]
USERS = {"alice": "approver", "bob": "approver", "oscar": "operator", "vera": "viewer"}


def _ring() -> Network:
    nodes = [Router(id=n) for n in "abcd"]
    links = []
    for s, t in (("a", "b"), ("b", "c"), ("c", "d"), ("d", "a")):
        links += [Link(source=s, target=t, capacity=100, metric=10), Link(source=t, target=s, capacity=100, metric=10)]
    return Network(nodes=nodes, links=links)


def _approved(store: ChangeStore, intents=METRIC, proposer="alice", approver="bob") -> str:
    cid = store.propose(intents, proposer, "test", [])
    assert store.record_verification(cid, GOOD) == "verified"
    store.approve(cid, approver)
    return cid


@pytest.fixture(scope="module")
def network():
    return load_network(bundled_network_path())


# --- probe 1: the changes table does not drive what is applied ---------------------------------------------------

def test_an_edited_row_is_not_applied_and_the_audit_says_so(network, tmp_path):
    db = tmp_path / "c.db"
    live = LiveAutopilot(network, changes_db=db)
    store = live.changes
    link = network.links[0]
    cid = store.propose([{"intent": "set_metric", "source": link.source, "target": link.target, "metric": 77}],
                        "oscar", "rejected proposal", [])
    store.record_verification(cid, BAD)
    assert store.get(cid).state == "rejected" and store.verify_audit()[0]
    drained = next(n.id for n in network.nodes if n.kind == "router")
    raw = sqlite3.connect(db)
    raw.execute("UPDATE changes SET state='approved', approver='bob', intents=? WHERE id=?",
                (json.dumps([{"intent": "drain_node", "node": drained}]), cid))
    raw.commit()
    metric_before = live.autopilot.driver.running().arrays().metric.copy()
    for _ in range(3):
        live.step()
    assert (live.autopilot.driver.running().arrays().metric == metric_before).all()  # nothing applied
    assert [e["action"] for e in store.audit(cid)][-1] == "annotate"  # the refusal, in the audit
    assert "refusing to act" in store.audit(cid)[-1]["detail"]["refused"]
    ok, where = store.verify_audit()
    assert not ok and cid in where and "disagrees" in where
    # The CLI audit agrees: exit 1 and the change named.
    result = CliRunner().invoke(cli, ["change", "audit", "--db", str(db)])
    assert result.exit_code != 0 and cid in result.output


def test_the_intents_applied_are_those_approved_not_the_rows(tmp_path):
    db = tmp_path / "c.db"
    store = ChangeStore(db)
    cid = _approved(store)
    raw = sqlite3.connect(db)
    raw.execute("UPDATE changes SET intents=? WHERE id=?",
                (json.dumps([{"intent": "set_metric", "source": "a", "target": "b", "metric": 65535}]), cid))
    raw.commit()
    assert approved_intents(store, cid, "netpilot") is None  # the edited row refuses the change
    raw.execute("UPDATE changes SET intents=? WHERE id=?", (json.dumps(METRIC), cid))
    raw.commit()
    intents = approved_intents(ChangeStore(db), cid, "netpilot")
    assert [i.model_dump(exclude_none=True) for i in intents] == METRIC


def test_an_approved_change_is_verified_again_before_it_applies(network, tmp_path):
    """Approved for a network that has moved on (here: intents naming a link it no longer has): applying
    verifies again on the network as it is, and rejects."""
    live = LiveAutopilot(network, changes_db=tmp_path / "c.db")
    store = live.changes
    cid = _approved(store, [{"intent": "set_metric", "source": "XX", "target": "YY", "metric": 5}], "oscar")
    metric_before = live.autopilot.driver.running().arrays().metric.copy()
    live.step()
    assert store.get(cid).state == "rejected"
    assert "verification at apply time failed" in store.audit(cid)[-2]["detail"]["why"]
    assert (live.autopilot.driver.running().arrays().metric == metric_before).all()
    assert store.verify_audit()[0]


# --- probe 2: a keyed, anchored chain ------------------------------------------------------------------------

def _history(tmp_path) -> tuple[Path, ChangeStore]:
    db = tmp_path / "c.db"
    store = ChangeStore(db)
    for _ in range(3):
        _approved(store)
    assert store.verify_audit() == (True, "every entry follows from the one before")
    raw = sqlite3.connect(db)
    raw.execute("DROP TRIGGER audit_no_update")
    raw.execute("DROP TRIGGER audit_no_delete")
    raw.commit()
    return db, store


def test_truncating_the_chain_is_detected(tmp_path):
    db, _ = _history(tmp_path)
    raw = sqlite3.connect(db)
    last = raw.execute("SELECT MAX(seq) FROM audit").fetchone()[0]
    raw.execute("DELETE FROM audit WHERE seq > ?", (last - 2,))
    raw.execute("UPDATE changes SET state='verified', approver=NULL WHERE id=(SELECT change_id FROM audit "
                "ORDER BY seq DESC LIMIT 1)")
    raw.commit()
    ok, where = ChangeStore(db).verify_audit()
    assert not ok and "witness" in where


def test_cutting_off_the_last_entry_is_detected_but_a_crash_before_the_witness_is_not(tmp_path):
    db, store = _history(tmp_path)
    witness = store.trust_files.witness
    anchored = witness.read_text()
    _approved(store)  # one more change: three entries, each its own transaction
    assert store.verify_audit()[0]
    # A writer that died between its commit and the witness: the chain is one entry ahead. Accepted.
    raw = sqlite3.connect(db)
    last = raw.execute("SELECT MAX(seq) FROM audit").fetchone()[0]
    raw.execute("DELETE FROM audit WHERE seq >= ?", (last - 1,))
    raw.execute("UPDATE changes SET state='proposed', verification=NULL, approver=NULL WHERE id=(SELECT change_id "
                "FROM audit "
                "ORDER BY seq DESC LIMIT 1)")
    raw.commit()
    witness.write_text(anchored)
    assert ChangeStore(db).verify_audit()[0]
    # The last entry cut off while the witness saw it: detected.
    _approved(ChangeStore(db))  # (opening the store puts the guards back: drop them again)
    raw.execute("DROP TRIGGER audit_no_delete")
    last = raw.execute("SELECT MAX(seq) FROM audit").fetchone()[0]
    raw.execute("DELETE FROM audit WHERE seq = ?", (last,))
    raw.execute("UPDATE changes SET state='verified', approver=NULL WHERE id=(SELECT change_id FROM audit "
                "ORDER BY seq DESC LIMIT 1)")
    raw.commit()
    ok, where = ChangeStore(db).verify_audit()
    assert not ok and "witness" in where


def _unkeyed(previous, at, change_id, actor, action, detail) -> str:
    return hashlib.sha256("\n".join([previous, at, change_id, actor, action, detail]).encode()).hexdigest()


def test_recomputing_the_chain_after_an_edit_is_detected(tmp_path):
    """Without the key, a rewritten chain's hashes are not HMACs: every entry fails."""
    db, _ = _history(tmp_path)
    raw = sqlite3.connect(db)
    raw.execute("UPDATE audit SET actor='mallory' WHERE action='approve'")
    raw.execute("UPDATE changes SET approver='mallory'")
    previous = "0" * 64
    for seq, at, cid, actor, action, detail in raw.execute(
            "SELECT seq, at, change_id, actor, action, detail FROM audit ORDER BY seq").fetchall():
        digest = _unkeyed(previous, at, cid, actor, action, detail)
        raw.execute("UPDATE audit SET prev_hash=?, hash=? WHERE seq=?", (previous, digest, seq))
        previous = digest
    raw.commit()
    report = ChangeStore(db).audit_report()
    assert not report.intact and "entry 1 was altered" in report.detail


def test_a_forged_approval_appended_is_detected(tmp_path):
    db = tmp_path / "c.db"
    store = ChangeStore(db)
    cid = store.propose(METRIC, "mallory", "mine", [])
    store.record_verification(cid, GOOD)
    raw = sqlite3.connect(db)
    _, head = raw.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    detail = json.dumps({"from": "verified", "to": "approved"}, sort_keys=True, separators=(",", ":"))
    at = "2026-01-01T00:00:00+00:00"
    raw.execute("INSERT INTO audit (at, change_id, actor, action, detail, prev_hash, hash) VALUES (?,?,?,?,?,?,?)",
                (at, cid, "bob", "approve", detail, head, _unkeyed(head, at, cid, "bob", "approve", detail)))
    raw.execute("UPDATE changes SET state='approved', approver='bob' WHERE id=?", (cid,))
    raw.commit()
    ok, where = ChangeStore(db).verify_audit()
    assert not ok and "altered" in where
    with pytest.raises(WorkflowError, match="HMAC"):
        ChangeStore(db).approved_intents(cid)


def test_the_key_and_witness_live_outside_the_database_readable_by_the_owner_only(tmp_path):
    store = ChangeStore(tmp_path / "c.db")
    _approved(store)
    for path in (store.trust_files.key, store.trust_files.witness):
        assert path.exists() and path.stat().st_mode & 0o077 == 0
    assert store.trust_files.key.read_text().strip() not in (tmp_path / "c.db").read_bytes().hex()


# --- probe 3: check-then-act races ----------------------------------------------------------------------------

def _race(*actions) -> list[str]:
    """Run the actions at once from threads; each one's outcome, ok or refused."""
    barrier = threading.Barrier(len(actions))
    outcomes: list[str] = []

    def act(action):
        barrier.wait()
        try:
            action()
            outcomes.append("ok")
        except WorkflowError:
            outcomes.append("refused")

    threads = [threading.Thread(target=act, args=(a,)) for a in actions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return outcomes


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_racing_transitions_one_wins(backend, tmp_path):
    """Two approvers at once: one approval. Apply against reject at once: one of them."""
    if backend == "postgresql" and not postgres_available():
        pytest.skip("PostgreSQL is not listening on 127.0.0.1:5432")
    location = str(tmp_path / "race.db") if backend == "sqlite" else \
        f"postgresql://postgres@127.0.0.1:5432/test?schema=t_{uuid.uuid4().hex[:12]}"
    stores = [ChangeStore(location, trust_dir=tmp_path) for _ in range(3)]
    try:
        for _ in range(12):
            cid = stores[0].propose(METRIC, "alice", "race", [])
            stores[0].record_verification(cid, GOOD)
            approvals = _race(lambda c=cid: stores[0].approve(c, "bob"), lambda c=cid: stores[1].approve(c, "carol"),
                              lambda c=cid: stores[2].approve(c, "dave"))
            assert approvals.count("ok") == 1, approvals
            assert sum(e["action"] == "approve" for e in stores[1].audit(cid)) == 1
            ends = _race(lambda c=cid: stores[0].advance(c, "applying", "driver"),
                         lambda c=cid: stores[1].reject(c, "carol", "no"))
            assert ends.count("ok") == 1, ends
            final = stores[2].get(cid).state
            assert final in ("applying", "rejected")
            assert stores[2].audit(cid)[-1]["detail"]["to"] == final
        report = stores[1].audit_report()
        assert report.intact, report.problems
    finally:
        if backend == "postgresql":
            stores[0]._sql.drop()
        for s in stores:
            s.close()


# --- the workflow under random operations, crashes and restarts, on one database -------------------------------

class Workflow(RuleBasedStateMachine):
    """Several stores on one database (SQLite file or a PostgreSQL schema), a network (a twin driver) they
    apply to, and random propose / verify / approve / reject / apply / crash / restart. After every step: the
    audit is intact and complete, nothing reached applying without a passed verification and an approval by
    someone other than the proposer, and no change has more than one terminal state."""

    location: str = ""
    trust_dir: Path | None = None
    changes = Bundle("changes")

    def __init__(self) -> None:
        super().__init__()
        self.stores = [ChangeStore(self.location, trust_dir=self.trust_dir) for _ in range(3)]
        self.driver = TwinDriver(_ring())
        self.proposed: set[str] = set()
        self.crashed: set[str] = set()

    def teardown(self) -> None:
        for s in self.stores:
            s.close()

    @rule(target=changes, who=st.sampled_from(["alice", "bob", " Alice", "carol"]), store=st.integers(0, 2),
          metric=st.integers(1, 200))
    def propose(self, who, store, metric):
        cid = self.stores[store].propose([{"intent": "set_metric", "source": "a", "target": "b", "metric": metric}],
                                         who, "random", [])
        self.proposed.add(cid)
        return cid

    @rule(cid=changes, ok=st.booleans(), store=st.integers(0, 2))
    def verify(self, cid, ok, store):
        with contextlib.suppress(WorkflowError):  # a refusal is a fine outcome; the invariants judge the rest
            self.stores[store].record_verification(cid, GOOD if ok else BAD)

    @rule(cid=changes, who=st.sampled_from(["alice", "ALICE ", "bob", "carol", "policy"]), store=st.integers(0, 2))
    def approve(self, cid, who, store):
        with contextlib.suppress(WorkflowError):  # a refusal is a fine outcome; the invariants judge the rest
            self.stores[store].approve(cid, who)

    @rule(cid=changes, store=st.integers(0, 2))
    def reject(self, cid, store):
        with contextlib.suppress(WorkflowError):  # a refusal is a fine outcome; the invariants judge the rest
            self.stores[store].reject(cid, "carol", "no")

    @precondition(lambda self: not self.crashed)
    @rule(cid=changes, store=st.integers(0, 2), crash_at=st.sampled_from(["none", "applying", "committed",
                                                                           "checking"]))
    def apply(self, cid, store, crash_at):
        s = self.stores[store]
        intents = approved_intents(s, cid, "driver")
        if intents is None:
            return
        begin_apply(s, cid, self.driver, "driver")
        if crash_at == "applying":
            self.crashed.add(cid)
            return
        self.driver.load_candidate(apply_intents(self.driver.running(), intents))
        self.driver.commit(confirm=None)
        if crash_at == "committed":
            self.crashed.add(cid)
            return
        s.advance(cid, "checking", "driver")
        if crash_at == "checking":
            self.crashed.add(cid)
            return
        self.driver.confirm()
        s.advance(cid, "done", "driver")

    @rule(store=st.integers(0, 2), check_passes=st.booleans())
    def restart(self, store, check_passes):
        """The process behind one store dies and starts again: a fresh store, and start-up reconciliation."""
        self.stores[store].close()
        self.stores[store] = ChangeStore(self.location, trust_dir=self.trust_dir)
        done = reconcile(self.stores[store], self.driver, "netpilot",
                         post_check=lambda net: (check_passes, "random post-check"))
        assert {r.change_id for r in done} == self.crashed
        self.crashed.clear()

    @invariant()
    def audit_intact_and_complete(self):
        report = self.stores[0].audit_report()
        assert report.intact, report.problems
        assert {c.id for c in self.stores[1].list()} == self.proposed

    @invariant()
    def nothing_applied_without_verification_and_a_second_person(self):
        entries = self.stores[2].audit()
        for cid in self.proposed:
            own = [e for e in entries if e["change_id"] == cid and e["action"] != "annotate"]
            steps = [e["detail"].get("to", e["action"]) if e["action"] != "propose" else "proposed" for e in own]
            if "applying" in steps:
                before = steps[:steps.index("applying")]
                assert "verified" in before and "approved" in before
                approval = next(e for e in own if e["action"] == "approve")
                assert approval["actor"].strip().casefold() != own[0]["actor"].strip().casefold()
            terminal = [s for s in steps if s in ("rejected", "rolled_back")]
            assert len(terminal) <= 1 and (not terminal or steps[-1] == terminal[0])
            assert steps.count("done") <= 1

    @invariant()
    def the_network_runs_only_confirmed_changes(self):
        if self.crashed:
            return
        running = self.driver.running().arrays().metric
        last_done = [c for c in self.stores[0].list("done")]
        expected = _ring()
        if last_done:
            latest = max(last_done, key=lambda c: c.updated)
            expected = apply_intents(_ring(), IntentList.model_validate(latest.intents).root)
        assert (running == expected.arrays().metric).all()


def test_workflow_state_machine_on_sqlite(tmp_path):
    # A fresh database per example: the location carries a counter.
    counter = iter(range(10**6))

    class OnSqlite(Workflow):
        def __init__(self):
            type(self).location = str(tmp_path / f"wf{next(counter)}.db")
            super().__init__()

    OnSqlite.trust_dir = None
    OnSqlite.TestCase.settings = settings(max_examples=40, stateful_step_count=25, deadline=None,
                                          suppress_health_check=list(HealthCheck))
    OnSqlite.TestCase("runTest").runTest()


def test_workflow_state_machine_on_postgresql(tmp_path):
    if not postgres_available():
        pytest.skip("PostgreSQL is not listening on 127.0.0.1:5432")
    schemas = []

    class OnPostgres(Workflow):
        def __init__(self):
            schema = f"wf_{uuid.uuid4().hex[:12]}"
            schemas.append(schema)
            type(self).location = f"postgresql://postgres@127.0.0.1:5432/test?schema={schema}"
            super().__init__()

    OnPostgres.trust_dir = tmp_path
    OnPostgres.TestCase.settings = settings(max_examples=12, stateful_step_count=20, deadline=None,
                                            suppress_health_check=list(HealthCheck))
    try:
        OnPostgres.TestCase("runTest").runTest()
    finally:
        import psycopg

        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True) as raw:
            for schema in schemas:
                raw.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


# --- probe 4: crashes, restarts, rollback by id, the demo's database ---------------------------------------------

CRASH = """
import os, signal, sys
from netpilot.change.actuate import begin_apply
from netpilot.change.drivers import TwinDriver
from netpilot.change.intents import IntentList, apply_intents
from netpilot.change.workflow import ChangeStore
from netpilot.model.io import load_network
from netpilot.model.sample import bundled_network_path

network = load_network(bundled_network_path())
store = ChangeStore(sys.argv[1])
link = network.links[0]
cid = store.propose([{"intent": "set_metric", "source": link.source, "target": link.target, "metric": 99}],
                    "oscar", "crash test", [])
store.record_verification(cid, {"ok": True, "checks": []})
store.approve(cid, "alice")
driver = TwinDriver(network)
intents = IntentList.model_validate(store.approved_intents(cid)).root
begin_apply(store, cid, driver, "netpilot")
driver.load_candidate(apply_intents(network, intents))
driver.commit()
store.advance(cid, "checking", "netpilot")
print(cid, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_change_left_checking_by_a_kill_is_settled_at_start_up(network, tmp_path):
    db = tmp_path / "c.db"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    done = subprocess.run([sys.executable, "-c", CRASH, str(db)], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    cid = done.stdout.split()[0]
    assert ChangeStore(db).get(cid).state == "checking"
    # Restarted: the simulator runs the metrics from before, so the change is not kept.
    live = LiveAutopilot(network, changes_db=db)
    assert [(r.change_id, r.state) for r in live.recovered] == [(cid, "rolled_back")]
    assert live.changes.get(cid).state == "rolled_back" and live.changes.verify_audit()[0]


def test_start_up_rolls_back_through_the_driver_unless_the_check_passes(tmp_path):
    for passes, final in ((False, "rolled_back"), (True, "done")):
        store = ChangeStore(tmp_path / f"{final}.db")
        cid = _approved(store)
        driver = TwinDriver(_ring())
        begin_apply(store, cid, driver, "netpilot")
        driver.load_candidate(apply_intents(_ring(), IntentList.model_validate(METRIC).root))
        driver.commit()
        driver.confirm()  # the routers run the change; the process dies before its check
        [settled] = reconcile(ChangeStore(tmp_path / f"{final}.db"), driver, "netpilot",
                              post_check=lambda net, ok=passes: (ok, "check"))
        assert settled.state == final == store.get(cid).state
        expected = 20 if passes else 10
        assert driver.running().links[0].metric == expected


def test_rollback_by_id_answers_409_when_that_change_is_not_in_flight(network, tmp_path):
    live = LiveAutopilot(network, changes_db=tmp_path / "c.db")
    tokens = make_tokens(USERS)
    h = {p.user: {"Authorization": f"Bearer {t}"} for t, p in tokens.items()}
    client = TestClient(create_app(live, tokens))
    link = network.links[0]
    cid = _approved(live.changes, [{"intent": "set_metric", "source": link.source, "target": link.target,
                                    "metric": 12}], "oscar", "alice")
    begin_apply(live.changes, cid, live.autopilot.driver, "netpilot")
    live.changes.advance(cid, "checking", "netpilot")  # checking in the record, not in this loop's hands
    answer = client.post(f"/api/changes/{cid}/rollback", json={"why": "x"}, headers=h["bob"])
    assert answer.status_code == 409 and "nothing to roll back" in answer.json()["detail"]


def test_demo_never_deletes_a_database_it_did_not_create(tmp_path):
    precious = tmp_path / "precious.db"
    ChangeStore(precious).propose(METRIC, "alice", "keep me", [])
    result = CliRunner().invoke(cli, ["demo", "--db", str(precious), "--seconds", "1"])
    assert result.exit_code == 2 and "not created by netpilot demo" in result.output
    assert ChangeStore(precious).list()[0].why == "keep me"
    other = tmp_path / "notes.txt"
    other.write_text("not a database")
    assert CliRunner().invoke(cli, ["demo", "--db", str(other), "--seconds", "1"]).exit_code == 2
    assert other.read_text() == "not a database"


# --- probe 5: identity ------------------------------------------------------------------------------------------

def test_names_are_normalised_before_the_two_person_rule():
    store = ChangeStore()
    for spoof in (" mallory", "MALLORY", "ｍａｌｌｏｒｙ", "mallory\t"):
        cid = store.propose(METRIC, "mallory", "mine", [])
        store.record_verification(cid, GOOD)
        with pytest.raises(WorkflowError, match="two-person"):
            store.approve(cid, spoof)
    with pytest.raises(WorkflowError, match="reserved"):
        store.approve(cid, "policy")


def test_cli_identity_comes_from_a_token_or_the_os_user_not_from_a_typed_name(tmp_path):
    import pwd

    db = tmp_path / "c.db"
    book = TokenBook(Path(str(db) + ".tokens.json"))
    mallory = {"NETPILOT_TOKEN": book.issue("mallory", "person", timedelta(hours=1))}
    store = ChangeStore(db)
    cid = store.propose(METRIC, "mallory", "mine", [])
    store.record_verification(cid, GOOD)
    runner = CliRunner()
    result = runner.invoke(cli, ["change", "approve", cid, "--by", " mallory", "--db", str(db)], env=mallory)
    assert result.exit_code == 2 and "two-person" in result.output
    result = runner.invoke(cli, ["change", "approve", cid, "--by", "alice", "--db", str(db)], env=mallory)
    assert result.exit_code == 2 and "is not you" in result.output
    # Without a token, the operating-system user.
    me = pwd.getpwuid(os.geteuid()).pw_name.casefold()
    result = runner.invoke(cli, ["change", "approve", cid, "--by", "mallory", "--db", str(db)],
                           env={"NETPILOT_TOKEN": ""})
    assert result.exit_code == 2 and "is not you" in result.output
    result = runner.invoke(cli, ["change", "approve", cid, "--db", str(db)], env={"NETPILOT_TOKEN": ""})
    assert result.exit_code == 0, result.output
    assert ChangeStore(db).get(cid).approver == me
    expired = {"NETPILOT_TOKEN": book.issue("alice", "person", timedelta(seconds=-1))}
    assert runner.invoke(cli, ["change", "reject", cid, "--why", "x", "--db", str(db)], env=expired).exit_code == 2


# --- probe 6: bounded and validated requests -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def api(network):
    live = LiveAutopilot(network, seed=1)
    tokens = make_tokens(USERS)
    client = TestClient(create_app(live, tokens, max_scenario_hours=0.5, proposals_per_minute=8))
    return client, live, {p.user: {"Authorization": f"Bearer {t}"} for t, p in tokens.items()}, tokens


def _metric_proposal(network, value) -> str:
    link = network.links[0]
    intent = f'{{"intent": "set_metric", "source": "{link.source}", "target": "{link.target}", "metric": {value}}}'
    return f'{{"why": "probe", "intents": [{intent}]}}'


def test_non_finite_numbers_and_invalid_unicode_are_422(api, network):
    client, _, h, _ = api
    post = {"headers": {**h["alice"], "Content-Type": "application/json"}}
    for value in ("NaN", "Infinity", "-Infinity", "1e400"):
        answer = client.post("/api/changes", content=_metric_proposal(network, value), **post)
        assert answer.status_code == 422, (value, answer.text)
    surrogate = '{"why": "\\ud800", "intents": [{"intent": "drain_node", "node": "x"}]}'
    assert client.post("/api/changes", content=surrogate, **post).status_code == 422
    assert client.post("/api/changes/x/reject", content='{"why": "\\udfff"}', **post).status_code == 422
    scenario = '{"hours": NaN}'
    assert client.post("/api/scenarios", content=scenario, **post).status_code == 422
    assert client.post("/api/scenarios", content='{"hours": 0.1, "congestion": 1e999}', **post).status_code == 422


def test_bodies_and_free_text_are_bounded(api, network):
    client, _, h, _ = api
    link = network.links[0]
    big = {"why": "x" * (3 * 1024 * 1024),
           "intents": [{"intent": "set_metric", "source": link.source, "target": link.target, "metric": 5}]}
    assert client.post("/api/changes", json=big, headers=h["oscar"]).status_code == 413
    long_why_in_intent = {"why": "ok", "intents": [{"intent": "set_metric", "source": link.source,
                                                    "target": link.target, "metric": 5, "why": "y" * 5000}]}
    assert client.post("/api/changes", json=long_why_in_intent, headers=h["oscar"]).status_code == 422


def test_tokens_header_only_hashed_and_expiring(api, network):
    client, live, h, tokens = api
    token = next(t for t, p in tokens.items() if p.user == "vera")
    assert client.get(f"/api/state?token={token}").status_code == 401
    assert client.get("/api/state", headers=h["vera"]).status_code == 200
    assert token not in client.app.state.tokens  # kept by hash only
    old = make_tokens({"olga": "viewer"}, ttl=timedelta(seconds=-1))
    expired = TestClient(create_app(live, old))
    assert expired.get("/api/me", headers={"Authorization": f"Bearer {next(iter(old))}"}).status_code == 401
    # The event stream takes a short-lived ticket obtained with the header, not the token.
    assert client.get(f"/api/events?token={token}").status_code == 401
    assert client.get("/api/events?ticket=nope").status_code == 401
    ticket = client.post("/api/events/ticket", headers=h["vera"]).json()
    assert ticket["ticket"] != token and ticket["expires"]


def test_changes_are_paginated_and_proposals_rate_limited(api, network):
    client, _, h, _ = api
    link = network.links[0]
    proposal = {"why": "rate", "intents": [{"intent": "set_metric", "source": link.source, "target": link.target,
                                            "metric": 11}]}
    codes = [client.post("/api/changes", json=proposal, headers=h["bob"]).status_code for _ in range(10)]
    assert codes.count(201) == 8 and codes[-1] == 429
    page = client.get("/api/changes?limit=3", headers=h["vera"]).json()
    assert len(page) == 3
    rest = client.get("/api/changes?limit=3&offset=3", headers=h["vera"]).json()
    assert {c["id"] for c in page}.isdisjoint({c["id"] for c in rest})
    assert client.get("/api/changes?limit=100000", headers=h["vera"]).status_code == 422


def test_proposals_are_verified_outside_the_live_lock(api, network, monkeypatch):
    """Verification runs on a snapshot, so proposals do not stall the loop's ticks."""
    import netpilot.api.app as api_module

    client, live, h, _ = api
    real = api_module.verify_change
    held = []

    def spy(*args, **kwargs):
        held.append(live.lock._is_owned())
        return real(*args, **kwargs)

    monkeypatch.setattr(api_module, "verify_change", spy)
    link = network.links[1]
    proposal = {"why": "lock", "intents": [{"intent": "set_metric", "source": link.source, "target": link.target,
                                            "metric": 12}]}
    assert client.post("/api/changes", json=proposal, headers=h["oscar"]).status_code == 201
    assert held == [False]


def test_one_scenario_at_a_time_even_when_requests_race(network):
    """Twelve POSTs at once to a real server (its thread pool runs them in parallel): one run starts."""
    import socket
    import urllib.error
    import urllib.request

    import uvicorn

    live = LiveAutopilot(network, seed=2)
    tokens = make_tokens({"oscar": "operator"})
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(live, tokens, max_scenario_hours=0.5), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    barrier = threading.Barrier(12)
    codes: list[int] = []

    def start():
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/scenarios", data=b'{"hours": 0.5}',
                                         headers={"Authorization": f"Bearer {next(iter(tokens))}",
                                                  "Content-Type": "application/json"})
        barrier.wait()
        try:
            codes.append(urllib.request.urlopen(request, timeout=120).status)
        except urllib.error.HTTPError as exc:
            codes.append(exc.code)

    try:
        for _ in range(600):
            if server.started:
                break
            threading.Event().wait(0.1)
        threads = [threading.Thread(target=start) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(180)
    finally:
        server.should_exit = True
        thread.join(10)
    assert sorted(codes) == [202] + [409] * 11


def test_demo_keeps_tokens_off_the_terminal(tmp_path):
    from netpilot.cli.autopilot import write_token_file

    tokens = make_tokens({"alice": "approver"})
    path = tmp_path / "t"
    write_token_file(path, tokens, "http://127.0.0.1:1/")
    assert path.stat().st_mode & 0o077 == 0
    token = next(iter(tokens))
    assert f"http://127.0.0.1:1/#token={token}" in path.read_text()


# --- telemetry: ratios in range, dead letters once ----------------------------------------------------------------

def test_ratio_metrics_out_of_range_are_dead_lettered_and_dead_letters_stored_once(tmp_path):
    from netpilot.telemetry.ingest import ingest_records, replay_file
    from netpilot.telemetry.store import DuckDBStore

    store = DuckDBStore()
    ts = "2026-01-01T00:00:00+00:00"
    records = [("nats:1", {"timestamp": f"2026-01-01T00:0{i}:00+00:00", "entity": "link:a->b",
                           "metric": "utilisation", "value": v}) for i, v in enumerate((-5, 1e308, 0.4, 1.3))]
    records.append(("nats:2", {"timestamp": ts, "entity": "link:a->b", "metric": "loss", "value": 1.5}))
    report = ingest_records(records, store, None)
    assert (report.stored, report.dead) == (2, 3)
    assert all("ratio" in d.reason for d in store.dead_letters())
    csv = tmp_path / "t.csv"
    csv.write_text("ts,entity,metric,value\n" + "".join(f"{ts},link:a->b,utilisation,{v}\n" for v in (-5, 1e308)))
    for _ in range(3):  # replays of the same file
        replay_file(csv, store, None)
    ingest_records(records, store, None)
    assert len(store.dead_letters()) == 3 + 2
