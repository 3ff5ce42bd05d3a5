"""Artifact routes: list and download a trial's saved files (weights, preprocessing state,
resolved configuration), one at a time or as a zip.

The folder is derived from the settings (``HPO_ARTIFACT_DIR/<study>/trial-NNNNN``), never from a
stored or requested path, and only regular files directly inside it whose real location is still
inside ``HPO_ARTIFACT_DIR`` are served: a file name with a separator, ``..`` or a symlink that
leads elsewhere is a 404. The token rules are those of every other read route.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, Response

from hpo_service.api import trial_queries as q
from hpo_service.api.deps import EngineDep, SettingsDep, StudyName
from hpo_service.api.errors import ApiError
from hpo_service.api.schemas import ArtifactFile, ArtifactList
from hpo_service.config import Settings
from hpo_service.store.studies import artifact_root, get_study

router = APIRouter(prefix="/api/studies/{name}/trials/{number}", tags=["artifacts"])
TrialNumber = Annotated[int, PathParam(ge=0, le=2**31 - 1, description="Trial number.")]
FileName = Annotated[
    str, PathParam(max_length=255, description="A name from the listing.", examples=["config.json"])
]


def trial_folder(settings: Settings, engine: EngineDep, name: str, number: int) -> Path:
    """The trial's artifact folder (which may not exist); 404 for an unknown study or trial."""
    get_study(engine, name)
    with engine.connect() as conn:
        if q.by_number(conn, q.study_id(conn, name), number) is None:
            raise ApiError(404, f"study {name!r} has no trial {number}", "number")
    return artifact_root(settings, name) / f"trial-{number:05d}"


def served_files(settings: Settings, folder: Path) -> dict[str, Path]:
    """Regular files directly in ``folder`` that really live under the artifact directory."""
    root = Path(settings.artifact_dir).resolve()
    if not folder.is_dir() or not folder.resolve().is_relative_to(root):
        return {}
    found = {}
    for path in sorted(folder.iterdir()):
        real = path.resolve()
        if path.is_file() and real.is_relative_to(root) and real.parent == folder.resolve():
            found[path.name] = real
    return found


def _base(name: str, number: int) -> str:
    return f"/api/studies/{name}/trials/{number}/artifacts"


@router.get("/artifacts", response_model=ArtifactList, summary="A trial's saved files")
def list_artifacts(
    name: StudyName, number: TrialNumber, settings: SettingsDep, engine: EngineDep
) -> ArtifactList:
    files = served_files(settings, trial_folder(settings, engine, name, number))
    base = _base(name, number)
    return ArtifactList(
        study=name,
        trial=number,
        files=[
            ArtifactFile(name=n, size_bytes=p.stat().st_size, url=f"{base}/{n}")
            for n, p in files.items()
        ],
        zip_url=f"{base}.zip" if files else None,
    )


@router.get(
    "/artifacts.zip",
    summary="All of a trial's saved files as one zip",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}}},
)
def artifacts_zip(
    name: StudyName, number: TrialNumber, settings: SettingsDep, engine: EngineDep
) -> Response:
    files = served_files(settings, trial_folder(settings, engine, name, number))
    if not files:
        raise ApiError(404, f"trial {number} of {name!r} has no saved files", "number")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file_name, path in files.items():
            archive.write(path, f"trial-{number:05d}/{file_name}")
    filename = f"{name}-trial-{number}.zip"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    return Response(buffer.getvalue(), media_type="application/zip", headers=headers)


@router.get(
    "/artifacts/{file_name}",
    summary="One saved file of a trial",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def artifact_file(
    name: StudyName,
    number: TrialNumber,
    file_name: FileName,
    settings: SettingsDep,
    engine: EngineDep,
) -> FileResponse:
    files = served_files(settings, trial_folder(settings, engine, name, number))
    path = files.get(file_name)
    if path is None:
        raise ApiError(404, f"trial {number} of {name!r} has no file {file_name!r}", "file_name")
    return FileResponse(path, filename=file_name, media_type="application/octet-stream")
