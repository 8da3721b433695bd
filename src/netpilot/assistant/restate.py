"""The restatement a person reads before approving: the intents in plain words, written by code from the intents
themselves (never by the model), with the current values they replace."""

from __future__ import annotations

from netpilot.change.intents import MAX_METRIC, DrainNode, Intent, SetLinkState, SetMetric
from netpilot.model.network import Network


def restate(intents: list[Intent], network: Network) -> list[str]:
    """One sentence per intent; a metric set on both directions of a link is one sentence."""
    metric = {(lk.source, lk.target): lk.metric for lk in network.links}
    state = {(lk.source, lk.target): lk.state for lk in network.links}
    sentences: list[str] = []
    done: set[int] = set()
    for i, intent in enumerate(intents):
        if i in done:
            continue
        if isinstance(intent, DrainNode):
            sentences.append(f"Drain {intent.node}: every link into and out of {intent.node} gets metric "
                             f"{MAX_METRIC}, so traffic goes round it; it stays reachable as a last resort.")
        elif isinstance(intent, SetLinkState):
            now = state.get((intent.source, intent.target), "?")
            sentences.append(f"Take the link {intent.source}-{intent.target} {intent.state.upper()} in both "
                             f"directions (it is {now} now).")
        elif isinstance(intent, SetMetric):
            back = next((j for j in range(i + 1, len(intents)) if j not in done
                         and isinstance(intents[j], SetMetric) and intents[j].metric == intent.metric
                         and (intents[j].source, intents[j].target) == (intent.target, intent.source)), None)
            old = metric.get((intent.source, intent.target), "?")
            if back is not None:
                done.add(back)
                old_back = metric.get((intent.target, intent.source), "?")
                was = f"{old}" if old == old_back else f"{old} and {old_back}"
                sentences.append(f"Set the IGP metric of the link {intent.source}-{intent.target} to "
                                 f"{intent.metric} in both directions (it is {was} now).")
            else:
                sentences.append(f"Set the IGP metric of {intent.source}->{intent.target} only to {intent.metric} "
                                 f"(it is {old} now).")
        else:
            sentences.append(f"{intent.intent}: {intent.model_dump_json(exclude_none=True)}")
    return sentences
