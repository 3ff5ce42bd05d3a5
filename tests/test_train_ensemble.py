"""A study's ensemble (hpo_service.train.ensemble) on real data: members of different sizes are
averaged in probability, its figures are those of the average, and its saved folder serves the
same predictions through the ordinary predictor."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from hpo_service.data import PreparedData, load_dataset
from hpo_service.spec import TaskSpec
from hpo_service.train import TrainConfig, fit, load_predictor, save_artifacts
from hpo_service.train.ensemble import build_ensemble, save_ensemble_folder

TEXTS = ["WINNER!! claim your free cash prize now, text WIN to 80086", "see you at lunch?"]


@pytest.fixture(scope="module")
def sms(data_dir: Path) -> PreparedData:
    task = TaskSpec(dataset="sms_spam", kind="text_classification", max_train_samples=600)
    return load_dataset(task, data_dir)


def _member(data: PreparedData, folder: Path, hidden: int, seed: int) -> Path:
    config = TrainConfig(
        learning_rate=0.01, batch_size=32, hidden_units=hidden, optimizer="adam",
        max_epochs=2, seed=seed, num_threads=1, metric="accuracy", direction="maximize",
    )  # fmt: skip
    return save_artifacts(fit(config, data), data, config, folder)


@pytest.fixture(scope="module")
def members(sms: PreparedData, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("members")
    return [_member(sms, root / "a", 8, 0), _member(sms, root / "b", 16, 1)]


def _positive(folder: Path, data: PreparedData) -> torch.Tensor:
    """A member's probability of the positive class on the validation split, computed here."""
    model = load_predictor(folder).model
    with torch.inference_mode():
        return torch.sigmoid(model(data.val.x, data.val.lengths).squeeze(-1))


def test_the_figures_are_those_of_the_members_mean_probability(
    sms: PreparedData, members: list[Path]
) -> None:
    ensemble = build_ensemble(members, sms)
    mean = torch.stack([_positive(folder, sms) for folder in members]).mean(0)
    accuracy = float(((mean > 0.5).long() == sms.val.y).float().mean())
    assert ensemble.validation["accuracy"] == pytest.approx(accuracy)
    assert ensemble.test is not None and 0.5 < ensemble.test["accuracy"] <= 1.0
    assert [c["hidden_units"] for c in ensemble.member_configs] == [8, 16]


def test_the_saved_folder_predicts_the_mean_of_its_members(
    sms: PreparedData, members: list[Path], tmp_path: Path
) -> None:
    ensemble = build_ensemble(members, sms)
    folder = save_ensemble_folder(ensemble, sms, [4, 2], tmp_path / "ensemble-4-2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ensemble-4-2"]  # no staging left
    saved = load_predictor(folder)
    answers = saved.predict(TEXTS)
    singles = [load_predictor(m).predict(TEXTS) for m in members]
    for i, answer in enumerate(answers):
        for label, p in answer["probabilities"].items():
            mean = sum(s[i]["probabilities"][label] for s in singles) / len(singles)
            assert p == pytest.approx(mean, abs=1e-5)
    config = json.loads((folder / "config.json").read_text())
    assert config["members"] == [4, 2] and config["best_metrics"] == ensemble.validation


def test_a_folder_already_built_is_kept(
    sms: PreparedData, members: list[Path], tmp_path: Path
) -> None:
    """Two workers building the same members: the second leaves the first's folder alone."""
    ensemble = build_ensemble(members, sms)
    folder = save_ensemble_folder(ensemble, sms, [0, 1], tmp_path / "ensemble-0-1")
    stamp = (folder / "weights.pt").stat().st_mtime_ns
    save_ensemble_folder(ensemble, sms, [0, 1], tmp_path / "ensemble-0-1")
    assert (folder / "weights.pt").stat().st_mtime_ns == stamp
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ensemble-0-1"]


def test_no_test_split_means_no_test_figure(data_dir: Path, tmp_path: Path) -> None:
    task = TaskSpec(
        dataset="sms_spam", kind="text_classification", max_train_samples=300, test_fraction=0
    )
    data = load_dataset(task, data_dir)
    folders = [_member(data, tmp_path / name, 8, seed) for seed, name in enumerate("ab")]
    ensemble = build_ensemble(folders, data)
    assert ensemble.test is None and 0 < ensemble.validation["accuracy"] <= 1
