"""Reading a spec: intake (API, CLI, dashboard) and re-reading stored specs.

Two ways in. :func:`parse_spec` (and the text and file readers built on it) is intake: after
validation it applies :class:`~.limits.SpecLimits` (caps on sizes, the form of ``task.dataset``),
strict by default, and text goes through :mod:`.decode`'s hardened YAML/JSON decoding on every
door. :func:`load_stored_spec` re-reads a spec the database already holds and checks no limits, so
lowering a limit never breaks a study that exists.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from hpo_service.spec.decode import DecodeError, decode_spec_text
from hpo_service.spec.limits import SpecLimits, check_limits
from hpo_service.spec.model import SpecError, StudySpec, format_errors


def _validate(data: Any) -> StudySpec:
    if not isinstance(data, dict):
        raise SpecError([f"spec: expected a mapping at the top level, got {type(data).__name__}"])
    try:
        return StudySpec.model_validate(data)
    except ValidationError as error:
        raise SpecError(format_errors(error)) from None


def parse_spec(data: Any, limits: SpecLimits | None = None) -> StudySpec:
    """Validate an incoming, already-decoded mapping and hold it to ``limits`` (the default
    limits when None), raising :class:`SpecError` with one field-named line per problem."""
    spec = _validate(data)
    problems = check_limits(spec, limits or SpecLimits())
    if problems:
        raise SpecError(problems)
    return spec


def load_stored_spec(data: Any) -> StudySpec:
    """Re-read a spec the database holds. It passed intake when it was stored; limits are not
    checked again, so a study keeps working after its limits were lowered."""
    return _validate(data)


def parse_spec_text(
    text: str, fmt: Literal["yaml", "json"] = "yaml", limits: SpecLimits | None = None
) -> StudySpec:
    """Parse YAML (a superset of JSON) or strict JSON text into a spec (intake: see parse_spec)."""
    try:
        data = decode_spec_text(text, fmt)
    except DecodeError as error:
        raise SpecError([f"spec: {error}"]) from None
    return parse_spec(data, limits)


def read_spec_file(path: str | Path) -> Any:
    """A spec file's decoded content (``.json`` as JSON, anything else as YAML), not validated:
    :mod:`hpo_service.store.intake` validates it with what the database knows (uploads)."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or "not UTF-8 text"
        raise SpecError([f"spec: cannot read {file}: {reason}"]) from None
    try:
        return decode_spec_text(text, "json" if file.suffix.lower() == ".json" else "yaml")
    except DecodeError as error:
        raise SpecError([f"spec: {error}"]) from None


def load_spec(path: str | Path, limits: SpecLimits | None = None) -> StudySpec:
    """Load and validate a spec file that names no upload (intake; see ``store.intake``)."""
    return parse_spec(read_spec_file(path), limits)


def spec_to_dict(spec: StudySpec) -> dict[str, Any]:
    """The JSON-safe form stored in the database and returned by the API."""
    return spec.model_dump(mode="json")
