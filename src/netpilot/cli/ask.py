"""`netpilot ask`: a request in words becomes a verified proposal, a question, a refusal or an explanation."""

from __future__ import annotations

import getpass
import os
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Optional

import typer

from netpilot.cli.common import print_json, reports_errors, stdout
from netpilot.errors import InputError


@reports_errors
def ask(
    request: Annotated[str, typer.Argument(help='What you want, in words: "drain Frankfurt for maintenance".')],
    network: Annotated[Optional[Path], typer.Option(help="Network file: the twin as it is now (default: the "
                                                         "bundled sample network).")] = None,
    by: Annotated[Optional[str], typer.Option(help="Who you are, checked as for `netpilot change propose`: the "
                                                  "holder of NETPILOT_TOKEN, else your login; you propose the "
                                                  "change.")] = None,
    db: Annotated[Optional[str], typer.Option(help="Change database to propose into (SQLite file or "
                                                   "postgresql://...); without it nothing is stored.")] = None,
    llm_url: Annotated[Optional[str], typer.Option(help="OpenAI-compatible endpoint (default: $NETPILOT_LLM_URL; "
                                                        "unset: the local model).")] = None,
    llm_model: Annotated[Optional[str], typer.Option(help="Model at the endpoint ($NETPILOT_LLM_MODEL).")] = None,
    llm_key: Annotated[Optional[str], typer.Option(help="API key ($NETPILOT_LLM_KEY).")] = None,
    max_utilisation: Annotated[float, typer.Option(help="Highest link utilisation a change may leave.")] = 1.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the reply as JSON.")] = False,
) -> None:
    """Ask the assistant. A change is verified on the twin and, with --db, proposed in your name; a second person
    approves it with `netpilot change approve`."""
    from netpilot.assistant.backends import BackendError, choose_backend
    from netpilot.assistant.core import Assistant
    from netpilot.assistant.tools import ChangeEntry, Observations
    from netpilot.model.io import load_network

    if network is None:
        from importlib import resources

        network = Path(str(resources.files("netpilot.data") / "sample_network.yaml"))
    twin = load_network(network)
    try:
        backend = choose_backend(llm_url or os.environ.get("NETPILOT_LLM_URL"),
                                 llm_model or os.environ.get("NETPILOT_LLM_MODEL"),
                                 llm_key or os.environ.get("NETPILOT_LLM_KEY"))
    except BackendError as exc:
        raise InputError.at(str(exc), field="--llm-model") from None
    store = None
    changes: tuple[ChangeEntry, ...] = ()
    who = by or getpass.getuser()
    if db is not None:
        from netpilot.cli.change import _store, _who

        who = _who(db, by)  # the person at the command line, never a name merely typed on it
        store = _store(db)
        changes = tuple(ChangeEntry(c.id, c.state, c.proposer, c.approver, c.why,
                                    tuple(i["intent"] for i in c.intents), c.created) for c in store.list())
    assistant = Assistant(backend)
    try:
        reply = assistant.ask(request, who, Observations(twin, changes=changes), store=store,
                              max_utilisation=max_utilisation)
    finally:
        backend.close()
    if as_json:
        print_json(asdict(reply))
        return
    out = stdout()
    out.print(f"[bold]{reply.kind}[/]: {reply.text}")
    for line in reply.diff[:12]:
        out.print(f"  {line['link']} {line['field']}: {line['before']} -> {line['after']}")
    if reply.change_id:
        out.print(f"change {reply.change_id}: {reply.state} (proposed by {who}; a second person approves it)")
    out.print(f"[dim]{reply.model}, {reply.seconds:.2f} s, prompt {str(reply.prompt_sha256)[:12]}[/]")
