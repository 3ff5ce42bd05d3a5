"""The device grammar, parsed in one place: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.

Settings (``HPO_DEVICE``), the CLI's ``--device``, the workers API and the process planner all
take this string; each used to parse it on its own. This module knows nothing of torch: whether a
GPU is really there is asked where processes are planned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DEVICE_CHOICES = "cpu, cuda, cuda:N or auto"


class DeviceError(ValueError):
    """A device string outside the grammar."""


@dataclass(frozen=True)
class Device:
    """A parsed device: ``kind`` and, for ``cuda:N``, the GPU ``index``."""

    kind: Literal["cpu", "cuda", "auto"]
    index: int | None = None

    def __str__(self) -> str:
        return f"cuda:{self.index}" if self.index is not None else self.kind


_NAMED = {"cpu": Device("cpu"), "cuda": Device("cuda"), "auto": Device("auto")}


def parse_device(value: str) -> Device:
    """The device a string names, or a :class:`DeviceError` that quotes it (shortened)."""
    if value in _NAMED:
        return _NAMED[value]
    prefix, _, index = value.partition(":")
    if prefix == "cuda" and index.isdigit() and index.isascii():
        return Device("cuda", int(index))
    raise DeviceError(f"device must be {DEVICE_CHOICES}, not {value[:40]!r}")


def check_device(value: str) -> str:
    """The same string, once it is known to be in the grammar (for validators)."""
    return str(parse_device(value))
