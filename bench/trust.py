"""The cost of a trustworthy change record: one change's whole workflow (propose, verify, approve, applying,
checking, done) on an SQLite file, and a full audit of the chain, with the evidence the loop attaches.

    python bench/trust.py [changes]

Run it with ``PYTHONPATH`` pointing at another checkout's ``src`` to compare two versions on one machine.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from netpilot.change.workflow import ChangeStore

REPORT = {"ok": True, "checks": [{"name": f"check {i}", "ok": True, "detail": "x" * 80} for i in range(7)],
          "figures": {"mlu_before": 1.3, "mlu_after": 1.1, "overloading_failures": []}}
INTENTS = [{"intent": "apply_metrics", "metrics": {f"L{i}->M{i}": 10 + i for i in range(6)}}]
DIFF = [{"device": f"R{i}", "link": f"L{i}->M{i}", "field": "metric", "before": 10, "after": 10 + i} for i in range(6)]


def main(changes: int = 200) -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = ChangeStore(Path(folder) / "bench.db")
        per_change = []
        for _ in range(changes):
            started = time.perf_counter()
            cid = store.propose(INTENTS, "autopilot", "MLU 1.30 now; re-optimised IGP metrics on 6 links", DIFF)
            store.annotate(cid, "autopilot", "evidence", {"mlu": 1.3, "causes": [{"kind": "link_down"}] * 3})
            store.record_verification(cid, REPORT)
            store.approve(cid, "alice")
            for state in ("applying", "checking", "done"):
                store.advance(cid, state, "autopilot", {"post_check": "ok"})
            per_change.append((time.perf_counter() - started) * 1000)
        audits = []
        for _ in range(5):
            started = time.perf_counter()
            ok, _ = store.verify_audit()
            audits.append((time.perf_counter() - started) * 1000)
        assert ok
        entries = len(store.audit())
    per_change.sort()
    p50, p99 = statistics.median(per_change), per_change[int(0.99 * (len(per_change) - 1))]
    print(f"| {changes} changes, {entries} audit entries | workflow per change p50 {p50:.2f} ms, p99 {p99:.2f} ms "
          f"| full audit {statistics.median(audits):.1f} ms (median of 5) |")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
