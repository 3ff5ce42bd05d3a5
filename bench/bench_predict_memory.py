"""Server memory for one predict request of 10,000 long texts (~44 MB of JSON), batched or not.

    python bench/bench_predict_memory.py --data-dir ../shared/datasets [--texts 10000]

Trains a small SMS Spam classifier (one epoch), registers it as the best trial of a study on an
SQLite file, then for each batch size starts a real ``hpo serve`` (uvicorn, loopback), warms it
up with a 10-text prediction (torch and the model loaded), and sends one request of ``--texts``
texts of ~4,400 characters each. Prints the server's resident memory before the request and its
high-water mark after (VmRSS / VmHWM from /proc), the extra memory, time and response size.
A batch size equal to the number of texts is the old behaviour (everything in one batch).
Target (issue 14): under 300 MB extra for 10,000 texts.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def proc_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def prepare(root: Path, data_dir: Path) -> dict[str, str]:
    """A migrated SQLite database with a study whose best trial has a trained SMS model."""
    import optuna

    from hpo_service.config import Settings
    from hpo_service.data import load_dataset
    from hpo_service.spec import TaskSpec, parse_spec
    from hpo_service.store.db import get_storage, migrate
    from hpo_service.store.studies import create_study
    from hpo_service.train import TrainConfig, fit, save_artifacts

    env = {
        "HPO_DATABASE_URL": f"sqlite:///{root / 'predict.db'}",
        "HPO_DATA_DIR": str(data_dir),
        "HPO_ARTIFACT_DIR": str(root / "artifacts"),
        "HPO_CACHE_DIR": str(root / "cache"),
        "HPO_MAX_BODY_MB": "64",
    }
    settings = Settings(
        database_url=env["HPO_DATABASE_URL"],
        data_dir=data_dir,
        artifact_dir=root / "artifacts",
        cache_dir=root / "cache",
    )
    migrate(settings)
    data = load_dataset(TaskSpec(dataset="sms_spam", kind="text_classification"), data_dir)
    cfg = TrainConfig(
        learning_rate=0.005, batch_size=64, hidden_units=32, optimizer="adam", max_epochs=1,
        embedding_dim=32, metric="accuracy", direction="maximize", num_threads=1,
    )  # fmt: skip
    folder = save_artifacts(fit(cfg, data), data, cfg, root / "artifacts" / "sms" / "0")
    spec = parse_spec(
        {
            "name": "sms",
            "task": {"dataset": "sms_spam", "kind": "text_classification", "metric": "accuracy"},
            "search_space": {"learning_rate": 0.005, "optimizer": "adam"},
            "budget": {"n_trials": 1, "max_epochs": 1},
        }
    )
    create_study(settings, spec)
    study = optuna.load_study(study_name="sms", storage=get_storage(settings))
    trial = study.ask()
    trial.set_user_attr("artifact_dir", str(folder))
    study.tell(trial, 0.9)
    return env


def long_texts(data_dir: Path, n: int, chars: int) -> list[str]:
    lines = (data_dir / "sms_spam" / "SMSSpamCollection").read_text(encoding="utf-8")
    messages = [line.split("\t", 1)[1] for line in lines.splitlines() if "\t" in line]
    rng = random.Random(0)
    texts = []
    for _ in range(n):
        parts: list[str] = []
        while sum(len(p) + 1 for p in parts) < chars:
            parts.append(rng.choice(messages))
        texts.append(" ".join(parts)[:chars])
    return texts


def measure(env: dict[str, str], batch: int, body: bytes) -> dict[str, float]:
    port = free_port()
    server_env = {**os.environ, **env, "HPO_PREDICT_BATCH_SIZE": str(batch)}
    hpo = Path(sys.executable).with_name("hpo")
    proc = subprocess.Popen(
        [str(hpo), "serve", "--port", str(port), "--workers", "1"],  # one process to measure
        env=server_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=1800) as client:
            deadline = time.monotonic() + 300  # it imports torch: slow on a busy machine
            while time.monotonic() < deadline:
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.5)
            warm = client.post("/api/studies/sms/predict", json={"inputs": ["hello"] * 10})
            assert warm.status_code == 200, warm.text
            before = proc_kb(proc.pid, "VmRSS")
            start = time.perf_counter()
            answer = client.post(
                "/api/studies/sms/predict",
                content=body,
                headers={"Content-Type": "application/json"},
            )
            seconds = time.perf_counter() - start
            assert answer.status_code == 200, answer.text[:300]
            peak = proc_kb(proc.pid, "VmHWM")
        return {
            "rss_mb": before / 1024,
            "peak_mb": peak / 1024,
            "extra_mb": (peak - before) / 1024,
            "seconds": seconds,
            "response_mb": len(answer.content) / 1e6,
        }
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:  # busy in torch: it would finish its request first
            proc.kill()
            proc.wait(timeout=10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=Path("../shared/datasets"))
    ap.add_argument("--texts", type=int, default=10_000)
    ap.add_argument("--chars", type=int, default=4_400)
    ap.add_argument("--batches", default="512,10000", help="batch sizes, comma-separated")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = prepare(Path(tmp), args.data_dir.resolve())
        body = json.dumps({"inputs": long_texts(args.data_dir, args.texts, args.chars)}).encode()
        print(f"{args.texts} texts, request {len(body) / 1e6:.1f} MB; load {os.getloadavg()}")
        print("| batch | RSS before MB | peak MB | extra MB | seconds | response MB |")
        print("|---|---|---|---|---|---|")
        for batch in (int(b) for b in args.batches.split(",")):
            got = measure(env, batch, body)
            print(
                f"| {batch} | {got['rss_mb']:.0f} | {got['peak_mb']:.0f} | {got['extra_mb']:.0f} "
                f"| {got['seconds']:.1f} | {got['response_mb']:.2f} |"
            )


if __name__ == "__main__":
    main()
