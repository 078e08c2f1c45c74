"""Read a protocol file: safe YAML (``smartscope.yamlsafe``) -> ``Protocol``, with one-line errors.

Every problem becomes a ``ProtocolError`` whose message names the file, the field (dotted path,
list items as ``[i]``), the value, and what to change; an unknown field comes with the nearest
valid name.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from smartscope.errors import ProtocolError
from smartscope.protocol.schema import Protocol
from smartscope.yamlsafe import YamlInputError, load_yaml

_MAX_VALUE_CHARS = 60


def load_protocol(path: str | Path) -> Protocol:
    """Read and validate a protocol file.

    Relative paths inside it (the model bundle, headless config) are resolved against the file's
    folder.

    Raises
    ------
    ProtocolError
        If the file is missing, is not YAML, or does not follow the schema.
    """
    path = Path(path)
    if path.is_dir():
        raise ProtocolError(f"{path}: is a folder, not a protocol file; give the YAML file "
                            "(e.g. acquisitions/mitosis_zoom.yaml)")
    if not path.is_file():
        raise ProtocolError(f"{path}: protocol file not found; check the path")
    try:
        data = load_yaml(path.read_text())
    except YamlInputError as e:
        raise ProtocolError(f"{path}: {e}") from e
    except UnicodeDecodeError as e:
        raise ProtocolError(f"{path}: not a text file ({e}); give a YAML protocol file") from e
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ProtocolError(
            f"{path}:{where}: YAML syntax error: {problem}; fix the indentation or quoting there"
        ) from e
    return parse_protocol(data, source=str(path), base_dir=path.resolve().parent)


def parse_protocol(data: Any, source: str = "<protocol>", base_dir: Path | None = None) -> Protocol:
    """Validate already-parsed protocol data (a dict); see ``load_protocol``."""
    if data is None:
        raise ProtocolError(f"{source}: the protocol is empty; start from a file in acquisitions/")
    if not isinstance(data, dict):
        raise ProtocolError(
            f"{source}: the top level must be a mapping of fields (version, screening, ...), "
            f"got {type(data).__name__}"
        )
    context = {"base_dir": base_dir} if base_dir is not None else None
    try:
        return Protocol.model_validate(data, context=context)
    except ValidationError as e:
        raise ProtocolError(format_validation_error(e, data, source)) from e


def check_phases(protocol: Protocol, classes: Sequence[str], source: str = "<protocol>") -> None:
    """Check that every trigger phase is a class of the model.

    Raises
    ------
    ProtocolError
        Naming the trigger, the phase and the model's classes.
    """
    for i, trig in enumerate(protocol.triggers):
        fields: list[tuple[str, tuple[str, ...]]] = [(f"triggers[{i}].phase", trig.phase)]
        for j, action in enumerate(trig.actions):
            confirm = getattr(action, "confirm", None)
            if confirm is not None and confirm.phase is not None:
                fields.append((f"triggers[{i}].actions[{j}].confirm.phase", confirm.phase))
        for where, phases in fields:
            for phase in phases:
                if phase not in classes:
                    near = difflib.get_close_matches(phase, list(classes), n=1)
                    hint = f"did you mean '{near[0]}'? " if near else ""
                    raise ProtocolError(
                        f"{source}: field '{where}': value '{phase}' is not a class of the "
                        f"model ({', '.join(classes)}); {hint}use one of the model's classes"
                    )


# --- error formatting ---------------------------------------------------------------------------


def format_validation_error(error: ValidationError, data: Any, source: str) -> str:
    """The first error of a pydantic ValidationError as one line for the user."""
    errors = error.errors()
    # a typo gives "unknown field" AND "required field missing": the typo is what to report
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(err["loc"])
    path, parent = _walk(loc)
    field = path or "(top level)"
    kind = err["type"]
    value = _short(err.get("input"))
    if kind == "extra_forbidden":
        name = str(loc[-1])
        valid = sorted(parent.model_fields) if parent is not None else []
        near = difflib.get_close_matches(name, valid, n=1, cutoff=0.5)
        hint = f"did you mean '{near[0]}'?" if near else "remove it"
        return (
            f"{source}: field '{field}': unknown field '{name}'; {hint} "
            f"(valid here: {', '.join(valid)})"
        )
    if kind == "missing":
        return f"{source}: field '{field}': required field is missing; add it"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        ctx = err.get("ctx", {})
        expected = ctx.get("expected_tags", "")
        return (
            f"{source}: field '{field}': type {_short(ctx.get('tag'))} is not known; "
            f"set 'type' to one of {expected}"
        )
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
        return f"{source}: field '{field}': {msg}"
    return f"{source}: field '{field}': value {value}: {msg}; change it"


def _short(value: Any) -> str:
    text = repr(value)
    if isinstance(value, dict):
        text = "{" + ", ".join(str(k) for k in value) + "}"
    return text if len(text) <= _MAX_VALUE_CHARS else text[: _MAX_VALUE_CHARS - 3] + "..."


def _walk(loc: Iterable[Any]) -> tuple[str, type[BaseModel] | None]:
    """Dotted display path of a pydantic error location (discriminator tags dropped), and the
    model class holding the last element."""
    ann: Any = Protocol
    parent: type[BaseModel] | None = None
    out = ""
    for part in loc:
        ann = _unwrap(ann)
        if isinstance(part, int) or _is_sequence(ann):
            out += f"[{part}]"
            ann = _element(ann)
            continue
        if _is_dict(ann):
            out += f".{part}" if out else str(part)
            ann = typing.get_args(ann)[1]
            continue
        members = _models(ann)
        tagged = [m for m in members if _tag(m) == part]
        if len(members) > 1 and tagged:
            ann = tagged[0]
            continue
        if len(members) == 1 and part in members[0].model_fields:
            parent = members[0]
            ann = members[0].model_fields[part].annotation
        else:
            parent = members[0] if len(members) == 1 else None
            ann = None
        out += f".{part}" if out else str(part)
    return out, parent


def _unwrap(ann: Any) -> Any:
    while typing.get_origin(ann) is typing.Annotated:
        ann = typing.get_args(ann)[0]
    if typing.get_origin(ann) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        if len(args) == 1:
            return _unwrap(args[0])
    return ann


def _is_sequence(ann: Any) -> bool:
    return typing.get_origin(ann) in (tuple, list)


def _is_dict(ann: Any) -> bool:
    return typing.get_origin(ann) is dict


def _element(ann: Any) -> Any:
    args = typing.get_args(ann)
    return args[0] if args else None


def _models(ann: Any) -> list[type[BaseModel]]:
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return [ann]
    if typing.get_origin(ann) in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(ann) if isinstance(a, type) and issubclass(a, BaseModel)]
    return []


def _tag(model: type[BaseModel]) -> Any:
    field = model.model_fields.get("type")
    return field.default if field is not None else None
