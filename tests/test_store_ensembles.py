"""A study's stored ensemble on real SQLite and PostgreSQL: a builder that ranked fewer COMPLETE
trials never overwrites one that ranked more, and the row goes with the study."""

from __future__ import annotations

from hpo_service.config import Settings
from hpo_service.spec import parse_spec
from hpo_service.store.db import get_engine
from hpo_service.store.ensembles import (
    StoredEnsemble,
    ensemble_folder,
    get_ensemble,
    save_ensemble,
)
from hpo_service.store.studies import create_study, delete_study
from tests.conftest import tiny_spec


def _ensemble(members: list[int], seen: int, rmse: float) -> StoredEnsemble:
    return StoredEnsemble(
        members=members, validation={"rmse": rmse}, test={"rmse": rmse + 1}, test_n=40,
        complete_seen=seen,
    )  # fmt: skip


def test_the_ensemble_that_ranked_more_trials_wins(migrated: Settings) -> None:
    engine = get_engine(migrated)
    info = create_study(migrated, parse_spec(tiny_spec("ens")))
    assert get_ensemble(engine, "ens") is None
    assert save_ensemble(engine, info.id, _ensemble([1, 0], 2, 20.0)) is True
    assert save_ensemble(engine, info.id, _ensemble([3, 1], 4, 18.0)) is True
    # A builder that ranked 3 trials finishes last: it must not replace the newer ensemble.
    assert save_ensemble(engine, info.id, _ensemble([2, 1], 3, 19.0)) is False
    stored = get_ensemble(engine, "ens")
    assert stored is not None and stored.members == [3, 1] and stored.validation == {"rmse": 18.0}
    summary = stored.summary()
    assert summary.pop("computed_at") and "complete_seen" not in summary
    assert summary == {
        "members": [3, 1], "validation": {"rmse": 18.0}, "test": {"rmse": 19.0}, "test_n": 40
    }  # fmt: skip
    assert save_ensemble(engine, info.id, _ensemble([3, 1], 4, 18.0)) is True  # same ranking
    delete_study(migrated, "ens")
    assert get_ensemble(engine, "ens") is None
    assert save_ensemble(engine, info.id, _ensemble([3, 1], 5, 17.0)) is False  # study gone


def test_the_folder_is_named_after_its_members() -> None:
    assert ensemble_folder([12, 3, 7]) == "ensemble-12-3-7"
