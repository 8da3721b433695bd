"""`POST /api/assistant`: the operator's assistant over the live autopilot's twin, incidents, forecasts and change
queue. A change it proposes is proposed by the person whose token asked, and waits for a second person."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import asdict
from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from netpilot.api.app import Viewer  # app.py includes this router from inside create_app, once it is loaded
from netpilot.errors import InputError


class AssistantRequest(BaseModel):
    text: str = Field(min_length=1, max_length=500, description="The request in words.")
    propose: bool = Field(default=True, description="Store a change as proposed (operators only).")


class AssistantReply(BaseModel):
    kind: Literal["proposal", "question", "refusal", "explanation"]
    text: str
    request: str
    intents: list[dict[str, Any]]
    restatement: list[str] = Field(description="The change in words, written by code from the intents.")
    diff: list[dict[str, Any]] = Field(description="The twin's diff.")
    verification: dict[str, Any] | None
    change_id: str | None
    state: str | None
    steps: list[dict[str, Any]] = Field(description="The read-only tools an explanation used.")
    model: str | None
    prompt_sha256: str | None
    raw: str | None = Field(description="The model's raw answer.")
    seconds: float


def assistant_router(live) -> APIRouter:
    """The route over ``live`` (a LiveLoop: the simulator or an FRR lab). The backend is the endpoint named by
    $NETPILOT_LLM_URL / $NETPILOT_LLM_MODEL / $NETPILOT_LLM_KEY, or the local model; it is made on first use, one
    request at a time."""
    from netpilot.assistant.backends import BackendError, choose_backend
    from netpilot.assistant.core import Assistant
    from netpilot.assistant.tools import ChangeEntry, Observations

    router = APIRouter()
    held: dict[str, Assistant] = {}
    one_at_a_time = threading.Lock()

    def assistant() -> Assistant:
        if "it" not in held:
            held["it"] = Assistant(choose_backend(os.environ.get("NETPILOT_LLM_URL"),
                                                  os.environ.get("NETPILOT_LLM_MODEL"),
                                                  os.environ.get("NETPILOT_LLM_KEY")))
        return held["it"]

    @router.post("/api/assistant", response_model=AssistantReply)
    def ask(body: AssistantRequest, who: Viewer) -> AssistantReply:
        """A request in words: a change (verified on the twin; proposed in your name when you are an operator),
        a clarifying question, a refusal with its reason, or an explanation from read-only tools."""
        pilot = live.autopilot
        with live.lock:
            network = pilot.believed_network()
            latest = live.latest
            utilisation = (tuple(float(u) if ok else 0.0 for u, ok in zip(latest.link_utilisation, latest.link_up))
                           if latest is not None else None)
            seen = Observations(
                network, utilisation=utilisation, forecasts=dict(pilot.forecast),
                incidents=tuple(asdict(i) for i in pilot.incidents),
                changes=tuple(ChangeEntry(c.id, c.state, c.proposer, c.approver, c.why,
                                          tuple(i["intent"] for i in c.intents), c.created)
                              for c in live.changes.list()))
        started = time.perf_counter()
        may_propose = body.propose and who.role in ("operator", "approver")
        with one_at_a_time:
            try:
                helper = assistant()
                interpretation = helper.interpret(body.text, network)
            except BackendError as exc:
                # 424: a dependency of this request (the model) failed; the server itself is fine.
                raise HTTPException(424, f"the assistant's model is not available: {exc}") from None
            try:
                with live.lock:
                    reply = helper.respond(interpretation, who.user, seen, store=live.changes if may_propose
                                           else None,
                                           max_utilisation=pilot.settings.verification.max_utilisation)
            except InputError as exc:
                raise HTTPException(422, str(exc)) from None
        reply.seconds = time.perf_counter() - started
        return AssistantReply(**asdict(reply))

    return router
