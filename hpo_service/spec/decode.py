"""Hardened YAML/JSON decoding of a spec, the same for every door (API, CLI, dashboard).

A spec is text from someone else: YAML aliases can expand a few lines into billions of nodes
(the "billion laughs"), deep nesting exhausts the recursion limit, and NaN or Infinity cannot be
stored in a JSON column and mean nothing in any spec field. Decoding refuses all three here, so
``hpo study create`` and ``POST /api/studies`` accept exactly the same texts.
"""

from __future__ import annotations

import json
import math
from typing import Any, Literal

import yaml

from hpo_service.spec.model import SpecError

MAX_DEPTH = 32
Format = Literal["yaml", "json"]


class DecodeError(ValueError):
    """The text is not valid JSON/YAML (a malformed request, HTTP 400); the message says where."""


class _NoAliasLoader(yaml.SafeLoader):
    """A SafeLoader (no arbitrary objects) that refuses anchors and aliases: no spec needs them."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise yaml.YAMLError("aliases (*name) are not allowed in a spec")
        return super().compose_node(parent, index)


def reject_non_finite(value: Any, path: str = "spec", depth: int = 0) -> None:
    """NaN/Infinity anywhere, or nesting deeper than :data:`MAX_DEPTH`, is a :class:`SpecError`
    naming the field."""
    if depth > MAX_DEPTH:
        raise SpecError([f"{path}: nested too deeply"])
    if isinstance(value, float) and not math.isfinite(value):
        raise SpecError([f"{path}: must be a finite number, got {value}"])
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, item in items:
        child = f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}"
        reject_non_finite(item, child.removeprefix("spec."), depth + 1)


def _decode(text: str, fmt: Format) -> Any:
    try:
        if fmt == "json":
            return json.loads(text)
        return yaml.load(text, Loader=_NoAliasLoader)
    except json.JSONDecodeError as error:
        raise DecodeError(f"malformed JSON ({error.msg} at line {error.lineno})") from None
    except yaml.YAMLError as error:
        raise DecodeError(f"malformed YAML ({str(error).splitlines()[0]})") from None
    except RecursionError:
        raise DecodeError("nested too deeply") from None


def decode_spec_text(text: str, fmt: Format = "yaml") -> Any:
    """The decoded value of a spec text: :class:`DecodeError` for text that does not parse,
    :class:`SpecError` for values no spec can hold (NaN, too deep)."""
    data = _decode(text, fmt)
    reject_non_finite(data)
    return data
