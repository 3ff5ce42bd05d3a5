"""Training throughput on SST-2: the project's trainer against two plain PyTorch loops.

Run by hand (not a test):

    python bench/bench_trainer.py --data-dir ../shared/datasets            # full train set
    python bench/bench_trainer.py --max-train-samples 10000 --repeats 1    # quicker

(a) a plain loop that pads every sentence to 50 tokens (pre-padding, last step's output, as in the
    Keras IMDB/SST examples) against ``hpo_service.train.fit``: target >= 3x.
(b) the same plain loop but with the project's length bucketing and packed model, default Adam
    as a user would write it: target >= 0.95x, i.e. the trial adds no overhead.
(b') as (b) with the fused Adam the trainer uses, isolating the loop's own overhead.

Every variant trains the same architecture (embedding -> 1-layer LSTM -> linear, one logit, BCE)
with the same vocabulary, hidden size, batch size and learning rate. Runs are interleaved and the
best of ``--repeats`` is kept per variant, because the machine is shared and load comes and goes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from hpo_service.data import PreparedData, Split, load_dataset
from hpo_service.spec import TaskSpec
from hpo_service.train import TrainConfig, fit
from hpo_service.train.batches import batch_indices, take
from hpo_service.train.model import RecurrentModel

PAD_TO = 50


class PaddedLSTM(nn.Module):
    """Keras-style: fixed-length pre-padded input, the output at the last step feeds the head."""

    def __init__(self, vocab: int, embedding_dim: int, hidden: int):
        super().__init__()
        self.embed = nn.Embedding(vocab, embedding_dim, padding_idx=0)
        self.lstm = nn.LSTM(embedding_dim, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(self.embed(x))
        return self.head(out[:, -1]).squeeze(-1)


def pre_pad(split: Split, length: int) -> torch.Tensor:
    """Every text left-padded (or cut) to ``length`` tokens."""
    assert split.lengths is not None
    out = torch.zeros(len(split), length, dtype=torch.long)
    for i, n in enumerate(split.lengths.tolist()):
        n = min(n, length)
        out[i, length - n :] = split.x[i, :n]
    return out


def plain_padded(data: PreparedData, args: argparse.Namespace) -> float:
    """Seconds for ``args.epochs`` epochs of the fixed-padding loop."""
    torch.manual_seed(0)
    x, y = pre_pad(data.train, PAD_TO), data.train.y.float()
    model = PaddedLSTM(data.input_size, args.embedding_dim, args.hidden)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    started = time.perf_counter()
    for _ in range(args.epochs):
        for index in torch.randperm(len(y)).split(args.batch_size):
            loss = F.binary_cross_entropy_with_logits(model(x[index]), y[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return time.perf_counter() - started


def plain_bucketed(data: PreparedData, args: argparse.Namespace, fused: bool) -> float:
    """Seconds for the same loop over the project's length-bucketed, packed batches."""
    torch.manual_seed(0)
    model = RecurrentModel(
        "text_classification", data.input_size, 1, args.hidden, embedding_dim=args.embedding_dim
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, fused=fused or None)
    generator, cpu = torch.Generator().manual_seed(0), torch.device("cpu")
    started = time.perf_counter()
    for _ in range(args.epochs):
        for index in batch_indices(data.train, args.batch_size, generator):
            x, lengths, y = take(data.train, index, cpu)
            loss = F.binary_cross_entropy_with_logits(model(x, lengths).squeeze(-1), y.float())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return time.perf_counter() - started


def trainer(data: PreparedData, args: argparse.Namespace) -> float:
    """Seconds for a whole ``fit`` call: training plus its (small) validation and test passes."""
    config = TrainConfig(
        learning_rate=args.lr,
        batch_size=args.batch_size,
        hidden_units=args.hidden,
        optimizer="adam",
        embedding_dim=args.embedding_dim,
        max_epochs=args.epochs,
        grad_clip=0.0,
    )
    started = time.perf_counter()
    fit(config, data)
    return time.perf_counter() - started


def small_eval(data: PreparedData, rows: int) -> PreparedData:
    """Keep validation/test tiny so fit's timing is dominated by training, as the loops are."""

    def head(split: Split) -> Split:
        assert split.lengths is not None
        return Split(split.x[:rows], split.y[:rows], split.lengths[:rows])

    return replace(data, val=head(data.val), test=head(data.test))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_dir = os.environ.get("HPO_DATA_DIR") or str(
        Path(__file__).resolve().parents[2] / "shared" / "datasets"
    )
    parser.add_argument("--data-dir", type=Path, default=Path(default_dir))
    parser.add_argument("--max-train-samples", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--hidden", type=int, default=122)
    parser.add_argument("--embedding-dim", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.003)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    task = TaskSpec(
        dataset="sst2", kind="text_classification", max_train_samples=args.max_train_samples
    )
    data = small_eval(load_dataset(task, args.data_dir), 256)
    samples = len(data.train) * args.epochs
    variants: dict[str, Callable[[], float]] = {
        "plain, padded to 50": lambda: plain_padded(data, args),
        "plain, bucketed (Adam)": lambda: plain_bucketed(data, args, fused=False),
        "plain, bucketed (fused Adam)": lambda: plain_bucketed(data, args, fused=True),
        "trainer (fit)": lambda: trainer(data, args),
    }
    print(
        f"SST-2: {len(data.train)} training sentences x {args.epochs} epoch(s), hidden "
        f"{args.hidden}, embedding {args.embedding_dim}, batch {args.batch_size}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}"
    )
    times: dict[str, list[float]] = {name: [] for name in variants}
    for repeat in range(args.repeats):
        for name, run in variants.items():
            times[name].append(run())
            print(
                f"  run {repeat + 1}: {name:30s} {samples / times[name][-1]:9.0f} samples/s",
                flush=True,
            )
    rate = {name: samples / min(t) for name, t in times.items()}
    for name, t in times.items():
        median = samples / statistics.median(t)
        print(f"{name:30s} best {rate[name]:9.0f} samples/s  median {median:9.0f}")
    ours = rate["trainer (fit)"]
    for label, name, target in [
        ("(a)  trainer / plain padded-to-50       ", "plain, padded to 50", "target >= 3"),
        ("(b)  trainer / plain bucketed           ", "plain, bucketed (Adam)", "target >= 0.95"),
        ("(b') trainer / plain bucketed fused Adam", "plain, bucketed (fused Adam)", "overhead"),
    ]:
        print(f"{label} = {ours / rate[name]:.2f}x ({target})")


if __name__ == "__main__":
    main()
