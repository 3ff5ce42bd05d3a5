"""A study's dataset is checked when the study is created and when it is started, at every door
(hpo_service.data.availability, through store.intake): real files in a real data directory, a
real upload, the real API. Each refusal is one message that starts with the field, says how to
fix it and shows no server path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hpo_service.api.app import create_app
from hpo_service.config import Settings
from hpo_service.data import DatasetError
from hpo_service.data.availability import check_available, needed_columns
from hpo_service.data.sources import DataRoots
from hpo_service.spec import TaskSpec
from hpo_service.store.db import get_engine
from hpo_service.store.studies import get_study
from tests.conftest import tiny_spec

SST2 = {"dataset": "sst2", "kind": "text_classification", "metric": "accuracy"}


def series(column: str = "value", rows: int = 60) -> str:
    return f"year,{column}\n" + "".join(f"{1900 + i},{i % 7 + 0.5}\n" for i in range(rows))


def refusal(task: dict[str, object], roots: DataRoots) -> str:
    with pytest.raises(DatasetError) as error:
        check_available(TaskSpec.model_validate(task), roots)
    return str(error.value)


def test_bundled_datasets_need_nothing() -> None:
    check_available(TaskSpec(dataset="sunspots", kind="forecasting"), DataRoots())


def test_file_datasets_name_the_variable_and_the_missing_file(tmp_path: Path) -> None:
    unset = refusal(SST2, DataRoots())
    assert unset.startswith("task.dataset: 'sst2' is read from HPO_DATA_DIR, which is unset")
    assert "set HPO_DATA_DIR to the folder that holds sst2/" in unset and "sunspots" in unset
    (tmp_path / "sst2").mkdir()
    (tmp_path / "sst2" / "train.tsv").write_text("sentence\tlabel\nfine\t1\n")
    missing = refusal(SST2, DataRoots(data_dir=tmp_path))
    assert "needs sst2/dev.tsv in the data directory" in missing
    assert str(tmp_path) not in missing


def test_the_shared_sst2_files_are_found(data_dir: Path) -> None:
    check_available(TaskSpec.model_validate(SST2), DataRoots(data_dir=data_dir))


def test_a_csv_must_exist_and_have_the_named_columns(tmp_path: Path) -> None:
    (tmp_path / "sun.csv").write_text(series("spots"))
    roots = DataRoots(data_dir=tmp_path)
    forecast = {"dataset": "sun.csv", "kind": "forecasting", "time_column": "year"}
    gone = refusal({**forecast, "dataset": "gone.csv"}, roots)
    assert gone.startswith("task.dataset: 'gone.csv' not found in the data directory")
    column = refusal(forecast, roots)
    assert column.startswith("task.value_column: 'value' is not a column of 'sun.csv'")
    assert "spots" not in column  # a data-directory file's header stays private
    check_available(TaskSpec.model_validate({**forecast, "value_column": "spots"}), roots)
    time = refusal({**forecast, "value_column": "spots", "time_column": "when"}, roots)
    assert time.startswith("task.time_column: 'when' is not a column")


def test_the_needed_columns_follow_the_task_kind() -> None:
    text = TaskSpec(dataset="t.csv", kind="text_classification", text_column="body")
    assert needed_columns(text) == [("text_column", "body"), ("label_column", "label")]
    seq = TaskSpec(dataset="s.csv", kind="sequence_classification", feature_columns=["a", "b"])
    assert [c for _, c in needed_columns(seq)] == ["label", "a", "b"]


def test_only_the_header_row_is_read(tmp_path: Path) -> None:
    """A body the loader would refuse still passes: the check reads the header only."""
    (tmp_path / "odd.csv").write_text("year,value\n" + "1900,not-a-number\n" * 5)
    check_available(TaskSpec(dataset="odd.csv", kind="forecasting"), DataRoots(data_dir=tmp_path))
    (tmp_path / "empty.csv").write_text("")
    empty = refusal({"dataset": "empty.csv", "kind": "forecasting"}, DataRoots(data_dir=tmp_path))
    assert "has no readable CSV header row" in empty


@pytest.fixture
def api(migrated: Settings, tmp_path: Path) -> Iterator[TestClient]:
    data = tmp_path / "data"
    data.mkdir()
    (data / "sun.csv").write_text(series())
    cfg = migrated.model_copy(update={"data_dir": data})
    with TestClient(create_app(cfg)) as client:
        yield client


def test_api_create_refuses_a_missing_dataset_with_422(api: TestClient, tmp_path: Path) -> None:
    task = {"dataset": "nope.csv", "kind": "forecasting"}
    answer = api.post("/api/studies", json=tiny_spec("missing", task=task))
    assert answer.status_code == 422, answer.text
    assert "task.dataset: 'nope.csv' not found in the data directory" in answer.text
    assert str(tmp_path) not in answer.text
    assert api.get("/api/studies/missing").status_code == 404  # nothing was stored
    columns = {"dataset": "sun.csv", "kind": "forecasting", "value_column": "spots"}
    answer = api.post("/api/studies", json=tiny_spec("bad-column", task=columns))
    assert answer.status_code == 422 and "task.value_column: 'spots'" in answer.text


def test_starting_a_study_whose_file_went_away_is_refused(
    api: TestClient, migrated: Settings, tmp_path: Path
) -> None:
    task = {"dataset": "sun.csv", "kind": "forecasting"}
    assert api.post("/api/studies", json=tiny_spec("moved", task=task)).status_code == 201
    (tmp_path / "data" / "sun.csv").unlink()
    for path, body in [("/start", None), ("/workers", {"processes": 1, "device": "cpu"})]:
        answer = api.post(f"/api/studies/moved{path}", json=body)
        assert answer.status_code == 422, answer.text
        assert "task.dataset: 'sun.csv' not found in the data directory" in answer.text
        assert str(tmp_path) not in answer.text
    assert get_study(get_engine(migrated), "moved").state == "created"  # nothing started


def test_an_upload_whose_file_is_gone_is_refused_at_start(
    api: TestClient, migrated: Settings
) -> None:
    made = api.post(
        "/api/datasets",
        files={"file": ("s.csv", series("spots"), "text/csv")},
        data={"kind": "forecasting", "value_column": "spots", "time_column": "year"},
    )
    assert made.status_code == 201, made.text
    task = {"dataset": made.json()["dataset"], "kind": "forecasting", "lookback": 6}
    assert api.post("/api/studies", json=tiny_spec("up", task=task)).status_code == 201
    for file in Path(migrated.upload_dir).glob("*.csv"):
        file.unlink()
    answer = api.post("/api/studies/up/start")
    assert answer.status_code == 422 and "upload the file again" in answer.text


def test_a_built_in_test_split_must_be_in_the_data_directory(tmp_path: Path) -> None:
    """``task.test_dataset: sst2:dev`` fails fast, naming the field and the file it needs."""
    task = {"dataset": "own.csv", "kind": "text_classification", "test_dataset": "sst2:dev"}
    (tmp_path / "own.csv").write_text("text,label\ngood,1\nbad,0\n")
    missing = refusal(task, DataRoots(data_dir=tmp_path))
    assert missing.startswith("task.test_dataset: 'sst2:dev' needs sst2/dev.tsv")
    assert str(tmp_path) not in missing
    unset = refusal({**SST2, "test_dataset": "sst2:dev"}, DataRoots())
    assert unset.startswith("task.dataset: 'sst2' is read from HPO_DATA_DIR")
    (tmp_path / "sst2").mkdir()
    (tmp_path / "sst2" / "dev.tsv").write_text("sentence\tlabel\nfine \t1\n")
    check_available(TaskSpec.model_validate(task), DataRoots(data_dir=tmp_path))


def test_a_missing_csv_test_set_is_refused_before_any_trial(tmp_path: Path) -> None:
    (tmp_path / "sun.csv").write_text(series())
    task = {"dataset": "sun.csv", "kind": "forecasting", "test_dataset": "later.csv"}
    gone = refusal(task, DataRoots(data_dir=tmp_path))
    assert gone.startswith("task.test_dataset: 'later.csv' not found in the data directory")


def test_the_shared_sst2_dev_split_is_found(data_dir: Path) -> None:
    check_available(
        TaskSpec.model_validate({**SST2, "test_dataset": "sst2:dev"}), DataRoots(data_dir=data_dir)
    )
