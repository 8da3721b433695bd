"""Reading and writing networks as YAML or JSON, with errors located to the line, and the JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from netpilot.errors import InputError, Problem
from netpilot.model.network import NETWORK_FORMAT, Network
from netpilot.model.validate import check_network

M = TypeVar("M", bound=BaseModel)

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """Safe dumper of netpilot's own, so its representers do not leak into PyYAML's."""


def read_text(path: str | Path) -> str:
    """File contents, or an InputError naming the file when it cannot be read."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError.at("no such file", file=path) from None
    except IsADirectoryError:
        raise InputError.at("is a directory, not a file", file=path) from None
    except UnicodeDecodeError as exc:
        raise InputError.at(f"not UTF-8 text ({exc.reason} at byte {exc.start})", file=path) from None
    except OSError as exc:
        raise InputError.at(f"cannot read: {exc.strerror}", file=path) from None


def parse_document(text: str, file: str | Path) -> Any:
    """Parse YAML or JSON text (by suffix) into Python data, reporting syntax errors with their line."""
    file = str(file)
    if file.endswith(".json"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError.at(f"invalid JSON: {exc.msg}", file=file, line=exc.lineno) from None
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        reason = getattr(exc, "problem", None) or str(exc)
        raise InputError.at(f"invalid YAML: {reason}", file=file,
                            line=mark.line + 1 if mark is not None else None) from None


class LineLocator:
    """Maps a field path inside a YAML/JSON document to the line it starts on."""

    def __init__(self, text: str):
        self._text = text
        self._composed = False
        self._root_node: Any = None

    @property
    def _root(self) -> Any:
        # Composing keeps every node's position: done only when an error needs a line.
        if not self._composed:
            self._composed = True
            try:
                self._root_node = yaml.compose(self._text, Loader=_Loader)
            except yaml.YAMLError:
                self._root_node = None
        return self._root_node

    def locate(self, path: tuple[Any, ...]) -> tuple[int | None, str]:
        """(line, readable path such as ``links[3].capacity``) for a pydantic-style location tuple."""
        node = self._root
        line = node.start_mark.line + 1 if node is not None else None
        parts: list[Any] = []
        for part in path:
            if isinstance(part, str) and part in _UNION_TAGS:
                continue  # pydantic's union tag, not a key of the document
            parts.append(part)
            node = _child(node, part)
            if node is not None:
                line = node.start_mark.line + 1
        return line, format_field_path(parts)


_UNION_TAGS = frozenset({"router", "cell_site", "edge_site"})


def _child(node: Any, part: Any) -> Any:
    if isinstance(part, int) and isinstance(node, yaml.SequenceNode) and 0 <= part < len(node.value):
        return node.value[part]
    if isinstance(part, str) and isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if key_node.value == part:
                return value_node
    return None


def format_field_path(parts: list[Any] | tuple[Any, ...]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _field_path_to_loc(field: str) -> tuple[Any, ...]:
    loc: list[Any] = []
    for chunk in field.replace("]", "").split("."):
        name, *indices = chunk.split("[")
        if name:
            loc.append(name)
        loc.extend(int(i) for i in indices)
    return tuple(loc)


def network_from_data(data: Any, *, file: str | Path = "<data>", text: str | None = None,
                      require_connected: bool = True) -> Network:
    """Build and check a Network from parsed data; every problem comes back located in ``text``."""
    file = str(file)
    locator = LineLocator(text) if text is not None else None
    if not isinstance(data, dict):
        raise InputError.at("expected a mapping with 'nodes' and 'links' at the top level", file=file, line=1)
    fmt = data.get("format", NETWORK_FORMAT)
    if fmt != NETWORK_FORMAT:
        raise InputError.at(f"unsupported format {fmt!r}; expected {NETWORK_FORMAT!r}", file=file, field="format")
    network = parse_model(Network, data, file=file, locator=locator)
    problems = check_network(network, file=file, require_connected=require_connected)
    if problems:
        if locator:
            problems = [Problem(p.message, p.file, locator.locate(_field_path_to_loc(p.field))[0]
                                if p.field else None, p.field) for p in problems]
        raise InputError(problems)
    return network


def parse_model(model_cls: type[M], data: Any, *, file: str | Path, locator: LineLocator | None = None) -> M:
    """Validate ``data`` as ``model_cls``; every field error comes back with its line and path."""
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            loc = (*err["loc"], "kind") if err["type"] == "union_tag_invalid" else err["loc"]
            line, shown = locator.locate(loc) if locator else (None, format_field_path(loc))
            problems.append(Problem(_describe(err), file=str(file), line=line, field=shown or None))
        raise InputError(problems) from None


def _describe(err: dict[str, Any]) -> str:
    message = err["msg"]
    if err["type"] == "missing":
        return "required field is missing"
    if err["type"] == "extra_forbidden":
        return "unknown field"
    if err["type"] == "union_tag_invalid":
        return f"unknown kind {err['ctx']['tag']!r}; expected one of {err['ctx']['expected_tags']}"
    if "input" in err and not isinstance(err["input"], (dict, list)):
        message += f" (got {err['input']!r})"
    return message


def load_network(path: str | Path, *, require_connected: bool = True) -> Network:
    """Read a netpilot network file (``.yaml``/``.yml``/``.json``)."""
    text = read_text(path)
    data = parse_document(text, path)
    return network_from_data(data, file=path, text=text, require_connected=require_connected)


def network_to_data(network: Network) -> dict[str, Any]:
    """The document form of ``network``: defaults left out, the format tag always written."""
    data = network.model_dump(mode="json", exclude_defaults=True)
    # The kind is the union's tag: it must survive even where it equals the class default.
    data["nodes"] = [{"id": n.id, **({"kind": n.kind} if n.kind != "router" else {}), **dumped}
                     for n, dumped in zip(network.nodes, data.get("nodes", []))]
    return {"format": NETWORK_FORMAT, **data}


def dumps_network(network: Network, fmt: str = "yaml") -> str:
    data = network_to_data(network)
    if fmt == "json":
        return json.dumps(data, indent=1) + "\n"
    # One link, demand or location per line keeps big networks readable and diffs small.
    for key in ("links", "demands"):
        data[key] = [_FlowMapping(item) for item in data.get(key, [])]
    for node in data.get("nodes", []):
        if "location" in node:
            node["location"] = _FlowMapping(node["location"])
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120,
                     allow_unicode=True)


class _FlowMapping(dict):
    """A mapping written on one line."""


_Dumper.add_representer(
    _FlowMapping, lambda dumper, data: dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=True))


def save_network(network: Network, path: str | Path) -> None:
    """Write ``network`` as JSON when the path ends in ``.json``, else YAML; the write is atomic."""
    path = Path(path)
    text = dumps_network(network, "json" if path.suffix == ".json" else "yaml")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def network_json_schema() -> dict[str, Any]:
    """The published JSON Schema of the network document."""
    schema = Network.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://netpilot.dev/schema/netpilot-network-1.json"
    return schema
