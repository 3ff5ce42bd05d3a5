"""The worker's incremental trial cache, the TPE sampler that reads it and the parameters written
together, on real databases: the cached sampler proposes exactly what Optuna's TPE proposes from
the same trials, the cache reads only what changed, and a trial's parameters arrive in one
transaction with its run."""

from __future__ import annotations

from typing import Any

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState
from sqlalchemy import event

from hpo_service.config import Settings
from hpo_service.scheduling.outcomes import ask
from hpo_service.scheduling.params import HeldParamsStorage
from hpo_service.scheduling.tpe import CachedTPESampler
from hpo_service.scheduling.trial_cache import TrialCache
from hpo_service.scheduling.worker import Worker, WorkerOptions
from hpo_service.spec import StudySpec
from hpo_service.spec.sampling import suggest_params
from hpo_service.store.db import get_engine, get_storage
from hpo_service.store.studies import create_study, load_optuna_study
from tests.test_runs import tiny_spec


def tpe(seed: int) -> optuna.samplers.TPESampler:
    """The sampler the service builds for ``sampler.type: tpe``."""
    return optuna.samplers.TPESampler(
        seed=seed, multivariate=True, constant_liar=True, n_startup_trials=5
    )


def objective_value(params: dict[str, Any]) -> float:
    return (params["learning_rate"] - 0.01) ** 2 + (params["optimizer"] == "adam") * 0.001


def fill(study: optuna.Study, spec: StudySpec, n: int) -> None:
    """Finished trials of every kind: complete, pruned after reports, failed; one left running
    with its params, one queued."""
    for i in range(n):
        trial = study.ask()
        params = suggest_params(trial, spec.search_space)
        if i % 7 == 3:
            trial.report(objective_value(params) * 2, step=0)
            trial.report(objective_value(params) * (1 + i % 3), step=i % 3 + 1)
            study.tell(trial, state=TrialState.PRUNED)
        elif i % 11 == 5:
            study.tell(trial, state=TrialState.FAIL)
        else:
            study.tell(trial, objective_value(params))
    suggest_params(study.ask(), spec.search_space)  # running, with params
    study.enqueue_trial({"learning_rate": 0.02, "optimizer": "rmsprop"})


@pytest.mark.parametrize(
    ("direction", "history"), [("minimize", 0), ("maximize", 0), ("minimize", 33)]
)
def test_cached_tpe_samples_what_optunas_tpe_samples(
    migrated: Settings, direction: str, history: int
) -> None:
    """Also with a ``tpe_history`` window the trials fit in (37 finished, 4 of them good)."""
    spec = tiny_spec(f"same-{direction}-{history}", n_trials=100)
    spec = spec.model_copy(update={"task": spec.task.model_copy(update={"direction": direction})})
    info = create_study(migrated, spec, start=True)
    storage = get_storage(migrated)
    fill(load_optuna_study(storage, info), spec, 40)
    cache = TrialCache(get_engine(migrated), storage.get_study_id_from_name(info.name))
    cache.refresh()
    assert cache.n_finished == 40 - 3  # failures: i = 5, 16, 27 (38 is pruned)
    assert len(cache.waiting) == 1 and len(cache.running) == 1
    trial = optuna.load_study(study_name=info.name, storage=storage).ask()
    frozen = storage.get_trial(trial._trial_id)
    for seed in range(5):
        plain = optuna.load_study(study_name=info.name, storage=storage, sampler=tpe(seed))
        cached = optuna.load_study(
            study_name=info.name,
            storage=storage,
            sampler=CachedTPESampler.adopt(tpe(seed), cache, history),
        )
        space = plain.sampler.infer_relative_search_space(plain, frozen)
        assert cached.sampler.infer_relative_search_space(cached, frozen) == space
        assert set(space) == {"learning_rate", "optimizer"}
        expected = plain.sampler.sample_relative(plain, frozen, space)
        assert cached.sampler.sample_relative(cached, frozen, space) == expected


def test_cache_reads_only_new_and_unfinished_trials(migrated: Settings) -> None:
    info = create_study(migrated, tiny_spec("incremental", n_trials=100), start=True)
    storage = get_storage(migrated)
    study = load_optuna_study(storage, info)
    fill(study, info.spec, 30)
    cache = TrialCache(get_engine(migrated), study._study_id)
    cache.refresh()
    assert cache.n_finished == 30 - 3 and cache.last_read == 32
    (running,) = cache.running
    study.tell(running.number, 0.5)  # the running trial finishes
    cache.refresh()
    assert cache.last_read == 2  # that trial and the queued one, nothing finished before
    assert cache.n_finished == 28 and cache.running == []
    assert cache.columns.numbers.tolist() == sorted(cache.columns.numbers.tolist())
    assert running.number in cache.columns.numbers.tolist()


def test_columns_match_the_study_when_trials_finish_out_of_order(migrated: Settings) -> None:
    """More trials than the columns' first capacity, finished in shuffled batches."""
    info = create_study(migrated, tiny_spec("shuffled", n_trials=200), start=True)
    study = load_optuna_study(get_storage(migrated), info)
    cache = TrialCache(get_engine(migrated), study._study_id)
    trials = [study.ask() for _ in range(150)]
    for trial in trials:
        suggest_params(trial, info.spec.search_space)
    order = np.random.default_rng(3).permutation(len(trials))
    for batch in np.array_split(order, 7):
        for index in batch:
            study.tell(trials[index], float(index) / 7)
        cache.refresh()
    cols = cache.columns
    assert cols.numbers.tolist() == list(range(150)) and cols.complete.all()
    assert sorted(cache.arrivals) == list(range(150)) and cache.arrivals != list(range(150))
    done = study.get_trials(deepcopy=False)
    assert cols.values.tolist() == [t.value for t in done]
    # internal representation: a float is itself, a choice its index
    assert cols.param("learning_rate").tolist() == [t.params["learning_rate"] for t in done]
    assert cols.param("optimizer").tolist() == [
        float(["adam", "rmsprop"].index(t.params["optimizer"])) for t in done
    ]
    assert np.isnan(cols.param("not_a_parameter")).all()


def test_parameters_named_like_the_fixed_columns(migrated: Settings) -> None:
    storage = get_storage(migrated)
    study = optuna.create_study(study_name="names", storage=storage)
    for i in range(3):
        trial = study.ask()
        trial.suggest_float("values", 0, 10)
        trial.suggest_int("numbers", 0, 10)
        study.tell(trial, float(i) / 10)
    cache = TrialCache(get_engine(migrated), study._study_id)
    cache.refresh()
    done = study.get_trials(deepcopy=False)
    assert cache.columns.values.tolist() == [0.0, 0.1, 0.2]
    assert cache.columns.numbers.tolist() == [0, 1, 2]
    assert cache.columns.param("values").tolist() == [t.params["values"] for t in done]
    assert cache.columns.param("numbers").tolist() == [t.params["numbers"] for t in done]


def test_queued_trial_is_popped_from_the_cache(migrated: Settings) -> None:
    info = create_study(migrated, tiny_spec("popped", n_trials=100), start=True)
    study = load_optuna_study(get_storage(migrated), info)
    study.enqueue_trial({"learning_rate": 0.02, "optimizer": "rmsprop"})
    cache = TrialCache(get_engine(migrated), study._study_id)
    trial = ask(study, cache)
    assert trial.number == 0 and suggest_params(trial, info.spec.search_space)["optimizer"] == (
        "rmsprop"
    )
    assert ask(study, cache).number == 1  # nothing queued any more: a new trial


def test_worker_writes_a_trials_params_in_one_transaction(migrated: Settings) -> None:
    spec = tiny_spec("together", n_trials=12)
    spec = spec.model_copy(update={"sampler": spec.sampler.model_copy(update={"type": "tpe"})})
    create_study(migrated, spec, start=True)
    param_inserts: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO TRIAL_PARAMS"):
            param_inserts.append(statement)

    def train(spec: StudySpec, trial: optuna.Trial, _stop: Any) -> list[float]:
        return [objective_value(suggest_params(trial, spec.search_space))]

    engine, storage_engine = get_engine(migrated), get_storage(migrated).engine
    for target in (engine, storage_engine):
        event.listen(target, "before_cursor_execute", count)
    try:
        done = Worker(migrated, WorkerOptions(study="together", exit_when_idle=True), train).serve()
    finally:
        for target in (engine, storage_engine):
            event.remove(target, "before_cursor_execute", count)
    assert done == 12
    assert len(param_inserts) == 12  # learning_rate and optimizer together, once per trial
    trials = optuna.load_study(study_name="together", storage=get_storage(migrated)).trials
    assert all(t.state == TrialState.COMPLETE and set(t.params) == {"learning_rate", "optimizer"}
               for t in trials)  # fmt: skip


def test_a_trial_just_created_is_not_read_back(migrated: Settings) -> None:
    info = create_study(migrated, tiny_spec("fresh", n_trials=10), start=True)
    backend = get_storage(migrated)
    study = load_optuna_study(HeldParamsStorage(backend), info)
    cache = TrialCache(get_engine(migrated), study._study_id)
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(backend.engine, "before_cursor_execute", record)
    try:
        trial = ask(study, cache)
    finally:
        event.remove(backend.engine, "before_cursor_execute", record)
    assert trial.number == 0 and trial._cached_frozen_trial.state == TrialState.RUNNING
    assert not [s for s in statements if "FROM trial_params" in s]  # no get_trial read-back
    assert study._storage.get_trial(trial._trial_id).state == TrialState.RUNNING  # read normally
