"""Read YAML written by someone else as data: ``yaml.SafeLoader`` (no objects, no code), plus two
refusals that PyYAML does not make.

- Duplicate keys: YAML says a mapping's keys are unique, PyYAML keeps the last value silently (a
  second ``exposure_ms`` or ``screening`` section would win unseen). Refused, naming both lines.
- Alias bombs: aliases (``*a``) are shared when parsed but copied when a value is built, so a few
  hundred bytes can expand to billions of values. The document's node graph is measured first
  (every alias counted at its full size) and refused beyond ``max_nodes`` before any value is
  built.
"""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["MAX_NODES", "YamlInputError", "load_yaml"]

MAX_NODES = 100_000
"""Values a document may expand to (a protocol has a few hundred)."""


class YamlInputError(ValueError):
    """The YAML text is refused; the message says where and why (without the file name)."""


_MERGE = "tag:yaml.org,2002:merge"


class _Loader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE or not isinstance(key_node, yaml.ScalarNode):
                continue
            key = self.construct_scalar(key_node)  # keys compared as written (plain scalars)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise YamlInputError(
                    f"line {line}: key '{key}' is repeated (first on line {seen[key]}); keep one "
                    "of them"
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _expanded_size(root: yaml.Node, limit: int) -> int:
    """Number of nodes the document expands to (aliases counted in full); stops past ``limit``."""
    sizes: dict[int, int] = {}
    # iterative post-order walk over the (acyclic for safe YAML) node graph, memoised per node
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if id(node) in sizes:
            continue
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        if not done:
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in sizes)
            continue
        total = 1 + sum(sizes.get(id(c), 0) for c in children)
        sizes[id(node)] = min(total, limit + 1)
    return sizes[id(root)]


def load_yaml(text: str, max_nodes: int = MAX_NODES) -> Any:
    """Parse one YAML document as plain data.

    Raises
    ------
    YamlInputError
        For a repeated key (both lines named) or a document expanding beyond ``max_nodes``
        values through aliases.
    yaml.YAMLError
        For a syntax error (with its position).
    """
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = _expanded_size(node, max_nodes)
        if size > max_nodes:
            raise YamlInputError(
                f"the document expands to more than {max_nodes} values through its aliases "
                "(*name); write the values out, or use fewer nested aliases"
            )
        return loader.construct_document(node)
    finally:
        loader.dispose()
