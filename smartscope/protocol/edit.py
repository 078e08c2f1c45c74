"""Edit one entry of a protocol's YAML text in place, keeping everything else as written.

``yaml.safe_load`` + ``yaml.safe_dump`` would drop the comments a microscopist wrote next to
thresholds and presets, reorder flow mappings and re-quote strings. Here the text is composed
(not loaded: node positions only, no tags, no objects), and only the characters of the one
value are replaced, or one line is inserted where the key is missing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import yaml

from smartscope.errors import ProtocolError
from smartscope.yamlsafe import YamlInputError, load_yaml


def _flow(value: Any) -> str:
    """A YAML flow rendering of a scalar / mapping / list of plain values."""
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))  # a double-quoted YAML string


def _end(node: yaml.Node) -> int:
    """Where ``node``'s own text ends: a block collection's end mark lies past its trailing
    newlines and comments, so it ends where its last value does."""
    if isinstance(node, yaml.MappingNode) and not node.flow_style and node.value:
        return _end(node.value[-1][1])
    if isinstance(node, yaml.SequenceNode) and not node.flow_style and node.value:
        return _end(node.value[-1])
    if isinstance(node, yaml.ScalarNode) and node.style in ("|", ">"):
        # a block scalar's end mark lies past its line breaks (and the next key's indentation)
        text = node.end_mark.buffer
        end = int(node.end_mark.index)
        while end > node.start_mark.index and text is not None and text[end - 1] in " \t\r\n":
            end -= 1
        return end
    return int(node.end_mark.index)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """One line: where and what, as load_protocol says it."""
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return where + (getattr(exc, "problem", None) or str(exc).splitlines()[0])


def _mapping_child(node: yaml.Node, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return k, v
    return None


def set_entry(text: str, keys: tuple[str, str], value: Mapping[str, Any], *,
              source: str, advice: str | None = None) -> str:
    """Return ``text`` with ``keys[0]: {keys[1]: value}`` set, comments and layout kept.

    Parameters
    ----------
    text : str
        The protocol's YAML text.
    keys : tuple of str
        Section and entry, e.g. ``("microscope", "camera")``; the section must exist as a
        block mapping.
    value : mapping
        The new value, written in flow style (``{flip_x: false, ...}``).
    source : str
        The file name for error messages.
    advice : str, optional
        What a refusal tells the user to do instead; default: the line to write by hand (with
        ``value``: give your own advice when ``value`` is a placeholder, as in a dry run).

    Raises
    ------
    ProtocolError
        If the text is not YAML, the section is missing or not a mapping, or the edited text
        would not load to the old data with only ``keys`` changed (anchors or aliases on the
        entry, explicit ``?`` keys): the message says what to write by hand.
    """
    section, entry = keys
    try:
        old = load_yaml(text)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except (yaml.YAMLError, YamlInputError) as exc:
        problem = _yaml_problem(exc) if isinstance(exc, yaml.YAMLError) else str(exc)
        raise ProtocolError(f"{source}: not valid YAML ({problem}); fix the file first") from None
    if not isinstance(root, yaml.MappingNode):
        raise ProtocolError(f"{source}: the protocol is not a mapping of sections")
    found = _mapping_child(root, section)
    if found is None or not isinstance(found[1], yaml.MappingNode):
        raise ProtocolError(f"{source}: no '{section}:' section to write {section}.{entry} into")
    sec_key, sec = found
    flow = _flow(value)
    out = _edited(text, sec_key, sec, entry, flow, source=source,
                  advice=advice or f"add '{entry}: {flow}' by hand")
    try:
        new = load_yaml(out)
        same = new[section].get(entry) == dict(value) and _without(new, keys) == _without(old, keys)
    except (yaml.YAMLError, YamlInputError, AttributeError, KeyError, TypeError):
        same = False
    if not same:
        raise ProtocolError(
            f"{source}: cannot change {section}.{entry} in place without changing other values "
            f"(an anchor '&', alias '*' or '?' key there); "
            + (advice or f"write '{entry}: {flow}' under '{section}:' by hand"))
    return out


def _without(data: dict[Any, Any], keys: tuple[str, str]) -> dict[Any, Any]:
    """``data`` less ``keys[0]: {keys[1]: ...}``, as new dictionaries at both levels (so a value
    shared through an alias elsewhere keeps the entry there and shows a change)."""
    section, entry = keys
    out = dict(data)
    out[section] = {k: v for k, v in data[section].items() if k != entry}
    return out


def _edited(text: str, sec_key: yaml.Node, sec: yaml.MappingNode, entry: str, flow: str, *,
            source: str, advice: str) -> str:
    child = _mapping_child(sec, entry)
    if child is not None:  # from just after the key to the end of its value
        start, end = child[0].end_mark.index, _end(child[1])
        return text[:start] + ": " + flow + text[end:]
    if sec.flow_style or not sec.value:
        raise ProtocolError(f"{source}: '{sec_key.value}:' is written in flow style; add "
                            f"'{entry}:' to it by hand or write the section as a block")
    first_key = sec.value[0][0]
    indent = " " * first_key.start_mark.column
    # insert as the section's first entry: on the line of its first key
    line_start = text.rfind("\n", 0, first_key.start_mark.index) + 1
    if text[line_start:first_key.start_mark.index].strip():  # key not first on its line
        raise ProtocolError(f"{source}: cannot place '{entry}:' in '{sec_key.value}:'; {advice}")
    newline = "\r\n" if "\r\n" in text else "\n"  # the file's own
    return text[:line_start] + f"{indent}{entry}: {flow}{newline}" + text[line_start:]


def is_protocol_text(text: str) -> bool:
    """Whether ``text`` reads as a smartscope protocol (a YAML mapping with ``version``,
    ``microscope`` and ``screening``): what ``calibrate --write`` may replace besides the
    protocol itself (never another tool's YAML file)."""
    try:
        data = load_yaml(text)
    except (yaml.YAMLError, YamlInputError, ValueError):
        return False
    return isinstance(data, dict) and {"version", "microscope", "screening"} <= set(data)
