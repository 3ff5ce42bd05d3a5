"""The recurrent model: padding never changes what a sequence's features are; ensembles average."""

from __future__ import annotations

import pytest
import torch

from hpo_service.train.model import EnsembleModel, RecurrentModel, build_model

STATE = {"kind": "text_classification", "input_size": 50, "n_outputs": 1}
PARAMS = {
    "hidden_units": 8,
    "num_layers": 1,
    "dropout": 0.0,
    "embedding_dim": 6,
    "cell": "lstm",
    "bidirectional": True,
}


def _model(pooling: str, **overrides: object) -> RecurrentModel:
    torch.manual_seed(0)
    return build_model(STATE, {**PARAMS, **overrides, "pooling": pooling}).eval()


@pytest.mark.parametrize("pooling", ["last", "max", "mean"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_a_padded_batch_gives_each_text_its_own_answer(pooling: str, cell: str) -> None:
    """Each row alone (no padding) and in a batch padded to the longest row agree."""
    model = _model(pooling, cell=cell, num_layers=2)
    rows = [[3, 4, 5, 6, 7, 8], [9, 10], [11, 12, 13]]
    batch = torch.zeros(3, 6, dtype=torch.long)
    for i, row in enumerate(rows):
        batch[i, : len(row)] = torch.tensor(row)
    lengths = torch.tensor([len(r) for r in rows])
    with torch.no_grad():
        together = model(batch, lengths)
        alone = torch.cat([model(torch.tensor([r]), torch.tensor([len(r)])) for r in rows])
    assert torch.allclose(together, alone, atol=1e-6)


def test_max_and_mean_pool_the_top_layer_outputs() -> None:
    """Max and mean are the reductions over time of the recurrent outputs the head reads."""
    x = torch.tensor([[3, 4, 5, 6]])
    for pooling, reduce in (("max", torch.amax), ("mean", torch.mean)):
        model = _model(pooling)
        with torch.no_grad():
            outputs, _ = model.rnn(model.inputs(x))
            expected = model.head(reduce(outputs, dim=1))
            assert torch.allclose(model(x, torch.tensor([4])), expected, atol=1e-6)
    last = _model("last")
    with torch.no_grad():
        assert not torch.allclose(last(x, None), _model("max")(x, None))


def test_parameters_without_pooling_build_the_last_state_model() -> None:
    """Artifacts saved before ``pooling`` existed rebuild as they were trained."""
    assert build_model(STATE, PARAMS).pooling == "last"


def test_an_unknown_pooling_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="pooling must be one of last, max, mean"):
        _model("sum")


@pytest.mark.parametrize(
    ("kind", "n_outputs"),
    [("text_classification", 1), ("text_classification", 3), ("forecasting", 2)],
)
def test_an_ensemble_trains_members_apart_and_answers_with_their_average(
    kind: str, n_outputs: int
) -> None:
    torch.manual_seed(0)
    state = {"kind": kind, "input_size": 50 if kind != "forecasting" else 1, "n_outputs": n_outputs}
    model = build_model(state, {**PARAMS, "ensemble_size": 3, "pooling": "max"})
    assert isinstance(model, EnsembleModel) and len(model.members) == 3
    x = torch.tensor([[3, 4, 5, 6], [7, 8, 9, 10]])
    if kind == "forecasting":
        x = torch.randn(2, 4, 1)
    with torch.no_grad():
        stacked = model.train()(x, None)
        combined = model.eval()(x, None)
        members = [member(x, None) for member in model.members]
    assert stacked.shape == (3, 2, n_outputs)
    assert not torch.allclose(members[0], members[1])  # different initialisations
    if kind == "forecasting":
        expected = torch.stack(members).mean(dim=0)
        assert torch.allclose(combined, expected, atol=1e-6)
    elif n_outputs == 1:
        mean_p = torch.stack([torch.sigmoid(m) for m in members]).mean(dim=0)
        assert torch.allclose(torch.sigmoid(combined), mean_p, atol=1e-6)
    else:
        mean_p = torch.stack([torch.softmax(m, dim=-1) for m in members]).mean(dim=0)
        assert torch.allclose(torch.softmax(combined, dim=-1), mean_p, atol=1e-6)
