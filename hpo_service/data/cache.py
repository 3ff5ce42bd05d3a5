"""Cache of preprocessed datasets: an in-process LRU in front of files under ``cache_dir``.

A worker runs many trials of one study, all with the same preprocessing, so the second trial
should cost a dictionary lookup; a new worker process still skips tokenizing via the disk copy.
The key covers the dataset, every preprocessing setting and the source files' content hashes.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from hpo_service.data.prepared import PreparedData

#: Bump when preprocessing changes so old cache files are ignored.
VERSION = 2
MEMORY_ENTRIES = 8

_memory: OrderedDict[str, PreparedData] = OrderedDict()
_lock = threading.Lock()
#: How each request was served in this process (for logs and tests).
stats = {"memory": 0, "disk": 0, "built": 0}


def cache_key(parts: dict[str, Any]) -> str:
    text = json.dumps({"version": VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _remember(key: str, data: PreparedData) -> PreparedData:
    with _lock:
        _memory[key] = data
        _memory.move_to_end(key)
        while len(_memory) > MEMORY_ENTRIES:
            _memory.popitem(last=False)
    return data


def _read_disk(path: Path) -> PreparedData | None:
    try:
        return PreparedData.from_dict(torch.load(path, weights_only=True))
    except Exception:  # a corrupt or outdated file is rebuilt, never fatal
        return None


def _write_disk(path: Path, data: PreparedData) -> None:
    """Write atomically so concurrent workers never read half a file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        torch.save(data.to_dict(), tmp)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache folder only costs speed


def cached(key: str, cache_dir: Path | None, build: Callable[[], PreparedData]) -> PreparedData:
    """The cached value for ``key``, else ``build()`` stored in memory and (if given) on disk."""
    with _lock:
        if key in _memory:
            _memory.move_to_end(key)
            stats["memory"] += 1
            return _memory[key]
    path = Path(cache_dir) / f"{key}.pt" if cache_dir is not None else None
    data = _read_disk(path) if path is not None and path.is_file() else None
    stats["disk" if data is not None else "built"] += 1
    if data is None:
        data = build()
        data = PreparedData(**{**data.__dict__, "cache_key": key})
        if path is not None:
            _write_disk(path, data)
    return _remember(key, data)


def clear_memory() -> None:
    """Forget the in-process copies (tests use it to exercise the disk cache)."""
    with _lock:
        _memory.clear()
