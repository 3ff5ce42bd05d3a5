"""The one reader of Optuna's tables, pinned to the installed Optuna.

The schema and encodings it assumes are checked against Optuna's own SQLAlchemy models and enums;
then a study written by Optuna itself (on an SQLite file and on PostgreSQL) is read back through
each function and compared with what Optuna's storage API says about the same trials.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import optuna
import pytest
import sqlalchemy as sa
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.storages._rdb import models
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from hpo_service.config import Settings
from hpo_service.spec import parse_spec
from hpo_service.store import optuna_tables as ot
from hpo_service.store.db import get_engine, get_storage, session_scope
from hpo_service.store.models import RunStatus, StudyRecord, TrialRun
from hpo_service.store.optuna_tables import schema
from hpo_service.store.studies import create_study
from tests.conftest import REPO_ROOT, tiny_spec

INF = float("inf")
SPACE = {
    "learning_rate": FloatDistribution(1e-4, 1e-1, log=True),
    "batch_size": CategoricalDistribution([32, 64]),
    "optimizer": CategoricalDistribution(["sgd", "adam"]),
    "hidden_units": IntDistribution(4, 8, step=4),
}


# --- the schema and encodings, against the installed Optuna --------------------------------------


def _compatible(ours: sa.types.TypeEngine[object], theirs: sa.types.TypeEngine[object]) -> bool:
    if isinstance(theirs, sa.Enum):
        return (
            isinstance(ours, sa.Enum)
            and ours.name == theirs.name  # PostgreSQL's native enum type
            and set(ours.enums) == set(theirs.enums)
        )
    same_class = type(ours) is type(theirs)
    sizes = ("length", "precision")
    return same_class and all(getattr(ours, a, None) == getattr(theirs, a, None) for a in sizes)


def test_every_table_and_column_exists_in_optunas_models_with_a_compatible_type() -> None:
    theirs = models.BaseModel.metadata.tables
    assert schema.metadata.tables, "the schema names no table"
    for table in schema.metadata.tables.values():
        assert table.name in theirs, f"Optuna has no table {table.name!r}"
        for column in table.columns:
            other = theirs[table.name].c.get(column.name)
            assert other is not None, f"Optuna's {table.name} has no column {column.name!r}"
            assert _compatible(column.type, other.type), (
                f"{table.name}.{column.name}: ours {column.type!r}, Optuna's {other.type!r}"
            )


def test_enum_columns_store_member_names_of_optunas_enums() -> None:
    enums = {
        ("trials", "state"): (TrialState, schema.TRIAL_STATES),
        ("trial_values", "value_type"): (
            models.TrialValueModel.TrialValueType,
            schema.VALUE_TYPES,
        ),
        ("trial_intermediate_values", "intermediate_value_type"): (
            models.TrialIntermediateValueModel.TrialIntermediateValueType,
            schema.INTERMEDIATE_VALUE_TYPES,
        ),
        ("study_directions", "direction"): (StudyDirection, schema.DIRECTIONS),
    }
    for (table, column), (enum, names) in enums.items():
        stored = models.BaseModel.metadata.tables[table].c[column].type
        assert stored.enum_class is enum and stored.values_callable is None  # names, not values
        assert set(names) == {member.name for member in enum}, f"{table}.{column}"
    finished = {s.name for s in TrialState if s.is_finished()}
    assert set(schema.FINISHED_STATES) == finished


@pytest.mark.parametrize("value", [1.5, -0.0, INF, -INF])
def test_value_decoding_inverts_optunas_stored_form(value: float) -> None:
    stored, value_type = models.TrialValueModel.value_to_stored_repr(value)
    assert schema.decode_value(stored, value_type.name) == value


def test_no_other_module_names_an_optuna_table_in_sql() -> None:
    tables = "|".join(models.BaseModel.metadata.tables)
    in_sql = re.compile(rf"\b(FROM|JOIN|UPDATE|INTO)\s+({tables})\b|table\(\s*\"({tables})\"", re.I)
    package = REPO_ROOT / "hpo_service"
    offenders = [
        f"{path.relative_to(REPO_ROOT)}: {match.group(0)}"
        for path in package.rglob("*.py")
        if "optuna_tables" not in path.parts
        for match in in_sql.finditer(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


# --- a real study written by Optuna, read back ---------------------------------------------------


@dataclass
class Written:
    settings: Settings
    engine: sa.Engine
    sid: int
    trials: list[FrozenTrial]  # by number
    mo_sid: int

    def by_state(self, *states: str) -> list[FrozenTrial]:
        return [t for t in self.trials if t.state.name in states]


def _ask(study: optuna.Study) -> optuna.Trial:
    return study.ask(SPACE)


def _fill(study: optuna.Study) -> None:
    """Every state and every stored form: finite and infinite values, NaN/inf reports, attrs."""
    first = _ask(study)
    for step, value in enumerate((0.9, math.nan, INF, 0.5)):
        first.report(value, step)
    first.set_user_attr("curves", {"train": [1.0, 0.5]})
    first.set_user_attr("diverged", math.nan)
    study.tell(first, 0.5)
    study.tell(_ask(study), INF)
    study.tell(_ask(study), 0.25)
    pruned = _ask(study)
    pruned.report(0.7, 0)
    study.tell(pruned, state=TrialState.PRUNED)
    for requeued in (True, False):
        failed = _ask(study)
        failed.set_user_attr("hpo_requeued", requeued)
        study.tell(failed, state=TrialState.FAIL)
    _ask(study)  # left RUNNING
    study.enqueue_trial({"optimizer": "adam"})  # WAITING


@pytest.fixture
def written(migrated: Settings) -> Written:
    create_study(migrated, parse_spec(tiny_spec("ot")))
    storage = get_storage(migrated)
    study = optuna.load_study(study_name="ot", storage=storage)
    _fill(study)
    mo = optuna.create_study(study_name="mo", storage=storage, directions=["maximize", "minimize"])
    for values in ((1.0, 2.0), (-INF, 3.0)):
        mo.tell(_ask(mo), values)
    return Written(
        migrated,
        get_engine(migrated),
        storage.get_study_id_from_name("ot"),
        study.get_trials(),
        storage.get_study_id_from_name("mo"),
    )


def _epoch(moment: datetime | None, naive_utc: bool = False) -> float:
    """Seconds since the epoch; Optuna's FrozenTrial times are naive local, ours naive UTC."""
    if moment is None:
        return math.nan
    return moment.replace(tzinfo=UTC).timestamp() if naive_utc else moment.timestamp()


def _same(ours: object, theirs: object) -> bool:
    """Equal, counting NaN as equal to NaN."""
    if isinstance(ours, float) and isinstance(theirs, float) and math.isnan(ours):
        return math.isnan(theirs)
    return ours == theirs


def test_study_lookup_directions_and_counts(written: Written) -> None:
    with written.engine.connect() as conn:
        assert ot.study_id(conn, "ot") == written.sid
        assert ot.study_id(conn, "mo") == written.mo_sid
        assert ot.study_id(conn, "no-such-study") is None
        assert ot.directions(conn, written.sid) == ("minimize",)
        assert ot.directions(conn, written.mo_sid) == ("maximize", "minimize")
        counts = ot.counts_by_state(conn, "ot")
        everywhere = ot.counts_by_study_and_state(conn)
        requeued = ot.count_with_user_attr(conn, "ot", "FAIL", "hpo_requeued", True)
        assert ot.counts_by_state(conn, "no-such-study") == dict.fromkeys(ot.TRIAL_STATES, 0)
    expected = Counter(t.state.name for t in written.trials)
    assert counts == {state: expected[state] for state in ot.TRIAL_STATES}
    assert counts["COMPLETE"] == 3 and counts["WAITING"] == 1
    assert sorted(everywhere) == sorted(
        [("ot", s, n) for s, n in expected.items()] + [("mo", "COMPLETE", 2)]
    )
    assert requeued == 1


def test_trial_rows_pages_and_polls(written: Written) -> None:
    trials, sid = written.trials, written.sid
    with written.engine.connect() as conn:
        rows = ot.page(conn, sid, None, False, 0, 100)
        complete_desc = ot.page(conn, sid, ["COMPLETE"], True, 1, 10)
        batched = [r for batch in ot.batches(conn, sid, None, size=3) for r in batch]
        one = ot.by_number(conn, sid, 3)
        missing = ot.by_number(conn, sid, 99)
        picked = ot.by_ids(conn, [trials[2]._trial_id, trials[0]._trial_id])
        n_finished = ot.count(conn, sid, ot.FINISHED_STATES)
        n_all = ot.count(conn, sid)
        newer = ot.changed_since(
            conn, sid, None, after_id=0, new_above=trials[5]._trial_id, since=datetime.max, limit=9
        )
        stamped = ot.changed_since(
            conn, sid, None, after_id=0, new_above=2**31 - 1, since=datetime.min, limit=2
        )
    assert [(r.number, r.state) for r in rows] == [(t.number, t.state.name) for t in trials]
    for row, trial in zip(rows, trials, strict=True):
        assert row.trial_id == trial._trial_id
        assert _same(_epoch(row.start, naive_utc=True), _epoch(trial.datetime_start))
        assert _same(_epoch(row.complete, naive_utc=True), _epoch(trial.datetime_complete))
    assert [r.number for r in complete_desc] == [1, 0]  # COMPLETE: 0, 1, 2; skip the first
    assert batched == rows and one == rows[3] and missing is None
    assert [r.number for r in picked] == [0, 2]
    assert (n_finished, n_all) == (6, 8)
    assert [r.number for r in newer] == [6, 7]  # only new ids: RUNNING, WAITING
    assert [r.number for r in stamped] == [0, 1]  # every started trial, in id order, limited


def test_values_params_attributes_and_reports(written: Written) -> None:
    trials = written.trials
    ids = [t._trial_id for t in trials]
    with written.engine.connect() as conn:
        values = ot.values_for(conn, ids)
        params = ot.params_for(conn, ids)
        names = ot.param_names(conn, written.sid)
        attrs = [ot.user_attrs(conn, i) for i in ids]
        bulk = ot.user_attrs_for(conn, ids)
        reports = [ot.intermediate(conn, i) for i in ids]
        best_min = ot.best_by_value(conn, written.sid, 0, minimize=True)
        best_max = ot.best_by_value(conn, written.sid, 0, minimize=False)
        finite = ot.complete_finite_values(conn, written.sid)
        none = ot.best_by_value(conn, written.sid, 1, minimize=True)
    assert values == {t._trial_id: t.values for t in trials if t.values is not None}
    assert values[ids[1]] == [INF]
    assert params == {t._trial_id: t.params for t in trials if t.params}
    assert ids[7] not in params  # WAITING: its fixed params are not sampled yet
    assert isinstance(params[ids[0]]["hidden_units"], int)
    assert names == sorted(SPACE)
    for ours, trial in zip(attrs, trials, strict=True):
        assert ours.keys() == trial.user_attrs.keys()
        assert all(_same(ours[k], v) for k, v in trial.user_attrs.items())
    assert math.isnan(attrs[0]["diverged"]) and attrs[0]["curves"] == {"train": [1.0, 0.5]}
    assert set(bulk) == {i for i, a in zip(ids, attrs, strict=True) if a}  # none: absent
    assert all(bulk[i].keys() == a.keys() for i, a in zip(ids, attrs, strict=True) if a)
    for ours, trial in zip(reports, trials, strict=True):
        expected = [
            (s, v if math.isfinite(v) else None) for s, v in trial.intermediate_values.items()
        ]
        assert ours == sorted(expected)
    assert reports[0] == [(0, 0.9), (1, None), (2, None), (3, 0.5)]
    assert (best_min, best_max, none) == (ids[2], ids[0], None)  # +inf is not finite: never best
    assert sorted(finite) == [(ids[0], 0, 0.5), (ids[2], 0, 0.25)]


def test_upkeep_writes_what_optunas_storage_reads(written: Written) -> None:
    """The migration's writes (metric names, removed attributes), read back through Optuna."""
    storage = get_storage(written.settings)
    first = written.trials[0]._trial_id
    with written.engine.begin() as conn:
        assert ot.metric_names(conn, written.sid) == ["rmse"]  # set by create_study
        assert ot.metric_names(conn, written.mo_sid) is None  # made by Optuna alone
        ot.set_metric_names(conn, written.mo_sid, ["score", "cost"])
        ot.delete_user_attrs(conn, first, ["curves", "not-there"])
        ot.delete_user_attrs(conn, first, [])
    assert optuna.load_study(study_name="mo", storage=storage).metric_names == ["score", "cost"]
    assert set(storage.get_trial(first).user_attrs) == {"diverged"}


def test_arrays_for_plots(written: Written) -> None:
    trials, sid = written.trials, written.sid
    done = written.by_state("COMPLETE")
    with written.engine.connect() as conn:
        one = ot.complete_values(conn, sid, 0)
        mo = ot.complete_values(conn, written.mo_sid)
        cols = ot.param_columns(conn, sid, ("COMPLETE", "PRUNED"))
        optimizer = ot.param_columns(conn, sid, ("COMPLETE",), ["optimizer"])
        nothing = ot.param_columns(conn, sid, ("COMPLETE",), ["no_such_param"])
        curves = ot.intermediate_columns(conn, sid, ("COMPLETE", "PRUNED"))
        times = ot.trial_times(conn, sid)
        started = ot.trial_times(conn, sid, ("COMPLETE", "RUNNING"))
    assert one.numbers.tolist() == [t.number for t in done]
    assert one.trial_ids.tolist() == [t._trial_id for t in done]
    assert one.values.tolist() == [t.value for t in done]  # +inf decoded from its type
    assert mo.numbers.tolist() == [0, 0, 1, 1] and mo.objectives.tolist() == [0, 1, 0, 1]
    assert mo.values.tolist() == [1.0, 2.0, -INF, 3.0]
    assert cols is not None and optimizer is not None and nothing is None
    by_id = {t._trial_id: t.params for t in trials}
    decoded = [
        (name, ot.distribution(djson).to_external_repr(value))
        for name, value, djson in zip(cols.names, cols.values, cols.distributions, strict=True)
    ]
    expected = [
        (name, by_id[int(i)][name]) for i, name in zip(cols.trial_ids, cols.names, strict=True)
    ]
    assert decoded == expected and len(decoded) == 4 * len(SPACE)
    assert set(optimizer.names) == {"optimizer"} and optimizer.trial_ids.size == 3
    reported = [
        (t._trial_id, s, v if math.isfinite(v) else math.nan)
        for t in written.by_state("COMPLETE", "PRUNED")
        for s, v in t.intermediate_values.items()
    ]
    got = list(zip(*(c.tolist() for c in curves), strict=True))
    assert len(got) == len(reported) and all(
        a[:2] == b[:2] and _same(a[2], b[2])
        for a, b in zip(sorted(got), sorted(reported), strict=True)
    )
    assert times.numbers.tolist() == [t.number for t in trials]
    assert times.states.tolist() == [t.state.name for t in trials]
    assert times.trial_ids.tolist() == [t._trial_id for t in trials]
    for ours, theirs in ((times.start, "datetime_start"), (times.complete, "datetime_complete")):
        stored = np.array([_epoch(getattr(t, theirs)) for t in trials])
        np.testing.assert_allclose(ours, stored, atol=1e-3)  # NaN where unset, on both sides
    assert started.states.tolist() == ["COMPLETE"] * 3 + ["RUNNING"]


def test_orphans_watermark_and_change_marks(written: Written) -> None:
    running = written.by_state("RUNNING")[0]
    plain = optuna.create_study(study_name="plain", storage=get_storage(written.settings))
    plain.ask()  # RUNNING too, but not a service study
    both = [written.sid, written.mo_sid]
    with written.engine.connect() as conn:
        orphans = ot.orphan_trials(conn)
        mark, none = ot.watermark(conn, written.sid), ot.watermark(conn, 10_000)
        before = ot.change_marks(conn, both)
        alone = ot.change_marks(conn, [written.mo_sid])
        empty = ot.change_marks(conn, [10_000])
    assert [(o.trial_id, o.study_name) for o in orphans] == [(running._trial_id, "ot")]
    assert orphans[0].spec["name"] == "ot"
    with session_scope(written.engine) as session:
        record = session.scalar(sa.select(StudyRecord.id).where(StudyRecord.name == "ot"))
        held = TrialRun(
            study_id=record, optuna_trial_id=running._trial_id, status=RunStatus.RUNNING
        )
        session.add(held)
    trials = written.trials
    assert mark.max_trial_id == max(t._trial_id for t in trials) and none == ot.Watermark()
    for stamp, field in (
        (mark.last_start, "datetime_start"),
        (mark.last_complete, "datetime_complete"),
    ):
        stored = max(_epoch(getattr(t, field)) for t in trials if getattr(t, field))
        assert _epoch(stamp, naive_utc=True) == pytest.approx(stored, abs=1e-3)
    assert len(before) == 2 and [m[:4] for m in before] == [
        (written.sid, 8, 7, 6),
        (written.mo_sid, 2, 2, 2),
    ]
    assert alone == before[1:] and empty == ()  # a study without trials has no marks
    optuna.load_study(study_name="ot", storage=get_storage(written.settings)).tell(
        running.number, 0.1
    )
    with written.engine.connect() as conn:
        assert ot.orphan_trials(conn) == []  # held by a run, then finished
        after = ot.change_marks(conn, both)
        moved = ot.watermark(conn, written.sid)
    assert after[1] == before[1] and after[0] != before[0] and after[0][3] == 7
    assert moved.max_trial_id == mark.max_trial_id and moved.last_complete != mark.last_complete


def _plans(engine: sa.Engine, read: object) -> list[str]:
    """The query plans of the statements ``read()`` sends (PostgreSQL: with sequential scans
    and sorts discouraged, since a tiny table would be read whole anyway)."""
    sent: list[tuple[str, object]] = []

    def capture(_c: object, _cur: object, statement: str, params: object, *_: object) -> None:
        sent.append((statement, params))

    sa.event.listen(engine, "before_cursor_execute", capture)
    try:
        with engine.connect() as conn:
            read(conn)  # type: ignore[operator]
    finally:
        sa.event.remove(engine, "before_cursor_execute", capture)
    plans = []
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        cursor = raw.cursor()  # type: ignore[union-attr]
        if engine.dialect.name == "postgresql":
            cursor.execute("SET enable_seqscan = off")
            cursor.execute("SET enable_sort = off")
        for statement, params in sent:
            prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
            cursor.execute(prefix + statement, params)
            plans.append(" ".join(str(part) for row in cursor.fetchall() for part in row))
    return plans


def test_trial_order_reads_use_the_service_indexes(written: Written) -> None:
    """Migration 0005: a page in trial-id order (the after cursor), a trial by number and the
    counts by state read one of the hpo_ix_trials_* indexes instead of the whole study. SQLite
    must pick the named index; PostgreSQL costs plans from statistics, meaningless on a table
    this small, so there any of the three (never the bare study_id index and a sort) will do."""
    since = datetime(2000, 1, 1)
    reads = {
        "hpo_ix_trials_study_trial": lambda c: ot.changed_since(
            c, written.sid, None, after_id=0, new_above=0, since=since, limit=5
        ),
        "hpo_ix_trials_study_number": lambda c: ot.by_number(c, written.sid, 3),
        "hpo_ix_trials_study_state": lambda c: ot.counts_by_state(c, "ot"),
    }
    for index, read in reads.items():
        plans = _plans(written.engine, read)
        wanted = index if written.engine.dialect.name == "sqlite" else "hpo_ix_trials_study"
        assert any(wanted in plan for plan in plans), (index, plans)
        assert not any("Sort" in plan for plan in plans), plans
        assert not any("TEMP B-TREE" in plan for plan in plans), plans
