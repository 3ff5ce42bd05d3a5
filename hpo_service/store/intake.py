"""Spec intake, one for every door: the API's create route, ``hpo study create``, ``hpo run``,
``hpo train`` (and the dashboard, which calls the API).

A spec arrives as decoded data (the API decodes its body off the event loop with
:mod:`hpo_service.spec.decode`) or as a file (the CLI). Either way the same three steps run: an
upload it names fills the column fields the spec leaves out (from the mapping given on upload),
the result is validated, and the caps of :class:`~hpo_service.spec.SpecLimits` apply. Before
this module the CLI skipped the upload mapping, so an upload spec that worked over HTTP failed
with "has no column 'value'" on the command line.

The intake also checks that the dataset is there (:mod:`hpo_service.data.availability`: files in
the data roots, a CSV's header has the named columns), and :func:`check_data` repeats that check
when a stored study is started (``hpo run``, ``hpo worker --study``, ``hpo study start``, the
API's start and workers routes): the data directory may have changed since, or the study may have
been created by a server with other settings. Without it a missing file failed every trial, one
traceback each.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from hpo_service.config import Settings
from hpo_service.data.availability import check_available
from hpo_service.data.errors import DatasetError
from hpo_service.data.sources import DataRoots
from hpo_service.spec import UPLOAD_ID, UPLOAD_PREFIX, SpecError, SpecLimits, StudySpec, parse_spec
from hpo_service.spec.parse import read_spec_file
from hpo_service.store.uploads import UploadError, get_upload


def intake(engine: Engine, data: Any, limits: SpecLimits, *, roots: DataRoots | None) -> StudySpec:
    """Validate decoded spec data, filled from the upload it names, against ``limits``, and
    check that its dataset can be found within ``roots`` (a missing one is a SpecError too:
    the spec cannot run as written). ``roots=None`` only for ``hpo train``, which loads the
    dataset itself right after checking its ``--param`` values, so that those are reported
    first."""
    spec = parse_spec(apply_upload(engine, data), limits)
    if roots is None:
        return spec
    try:
        check_available(spec.task, roots)
    except DatasetError as error:
        raise SpecError([str(error)]) from None
    return spec


def intake_file(
    engine: Engine, path: str | Path, limits: SpecLimits, *, roots: DataRoots | None
) -> StudySpec:
    """:func:`intake` of a YAML or JSON file, decoded the same hardened way as an API body."""
    return intake(engine, read_spec_file(path), limits, roots=roots)


def check_data(settings: Settings, spec: StudySpec) -> None:
    """Before a stored study starts: its dataset is there for this process's workers (strict
    roots: workers never honour HPO_ALLOW_LOCAL_PATHS). Raises
    :class:`~hpo_service.data.DatasetError` (HTTP 422, CLI exit 2) naming the field."""
    check_available(spec.task, DataRoots.from_settings(settings))


def apply_upload(engine: Engine, raw: Any) -> Any:
    """Fill a raw spec's column fields from the upload it names, and check the upload exists
    and is of the spec's kind. Anything that is not an upload spec passes through unchanged."""
    task = raw.get("task") if isinstance(raw, dict) else None
    if not isinstance(task, dict):
        return raw
    dataset = task.get("dataset")
    if not (isinstance(dataset, str) and dataset.startswith(UPLOAD_PREFIX)):
        return raw
    upload_id = dataset[len(UPLOAD_PREFIX) :]
    if not UPLOAD_ID.fullmatch(upload_id):
        raise SpecError([f"task.dataset: {dataset[:60]!r} is not an upload id (16 hex digits)"])
    try:
        info = get_upload(engine, upload_id)
    except UploadError:
        raise SpecError(
            [f"task.dataset: no uploaded dataset {dataset!r} (see GET /api/datasets)"]
        ) from None
    if task.get("kind", info.kind) != info.kind:
        raise SpecError([f"task.kind: uploaded dataset {info.id} is a {info.kind} dataset"])
    filled = {key: value for key, value in info.mapping.items() if value is not None}
    return {**raw, "task": {"kind": info.kind, **filled, **task}}
