"""Dataset routes: upload a CSV (multipart), list, show and delete uploads."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Path, Query, Response, UploadFile
from starlette.status import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from hpo_service.api.deps import EngineDep, SettingsDep
from hpo_service.api.schemas import DatasetOut, DatasetPage
from hpo_service.spec import Kind
from hpo_service.store.upload_limits import UploadLimits
from hpo_service.store.uploads import (
    DatasetInfo,
    delete_upload,
    get_upload,
    list_uploads,
    read_limited,
    save_upload,
)

router = APIRouter(prefix="/api/datasets", tags=["datasets"])
DatasetId = Annotated[str, Path(max_length=64, description="Upload id (from the upload).")]
Column = Annotated[str | None, Form(max_length=200)]


def dataset_out(info: DatasetInfo) -> DatasetOut:
    return DatasetOut(**info.model_dump(), dataset=info.dataset)


@router.post(
    "",
    status_code=HTTP_201_CREATED,
    response_model=DatasetOut,
    summary="Upload a CSV dataset (validated, stored under HPO_UPLOAD_DIR)",
)
def upload(
    settings: SettingsDep,
    response: Response,
    file: Annotated[UploadFile, File(description="The CSV, UTF-8, with a header row.")],
    kind: Annotated[Kind, Form(description="The task kind the data is for.")],
    name: Annotated[str | None, Form(max_length=255, description="Display name.")] = None,
    text_column: Column = None,
    label_column: Column = None,
    value_column: Column = None,
    time_column: Column = None,
    feature_columns: Annotated[
        str | None, Form(max_length=4000, description="Comma-separated numeric columns.")
    ] = None,
) -> DatasetOut:
    """Checks the size, column and row counts (while reading: a sync route, so the counting and
    pandas' parsing run in the thread pool, off the event loop), encoding, the columns the kind
    needs, a minimum row count and (for classification) at least two classes. Use the answer's
    ``dataset`` as ``task.dataset``."""
    content = read_limited(file.file, UploadLimits.from_settings(settings))
    features = (
        [c.strip() for c in feature_columns.split(",") if c.strip()] if feature_columns else None
    )
    mapping = {
        "text_column": text_column,
        "label_column": label_column,
        "value_column": value_column,
        "time_column": time_column,
        "feature_columns": features,
    }
    info = save_upload(
        settings, name=name or file.filename or "", kind=kind, content=content, mapping=mapping
    )
    response.headers["Location"] = f"/api/datasets/{info.id}"
    return dataset_out(info)


@router.get("", response_model=DatasetPage, summary="Uploaded datasets, newest first")
def list_all(
    engine: EngineDep,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> DatasetPage:
    infos, total = list_uploads(engine, offset, limit)
    return DatasetPage(
        items=[dataset_out(i) for i in infos], total=total, offset=offset, limit=limit
    )


@router.get("/{dataset_id}", response_model=DatasetOut, summary="One uploaded dataset")
def show(dataset_id: DatasetId, engine: EngineDep) -> DatasetOut:
    return dataset_out(get_upload(engine, dataset_id))


@router.delete(
    "/{dataset_id}",
    status_code=HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete an upload (refused while a study names it)",
)
def remove(dataset_id: DatasetId, settings: SettingsDep) -> Response:
    delete_upload(settings, dataset_id)
    return Response(status_code=HTTP_204_NO_CONTENT)
