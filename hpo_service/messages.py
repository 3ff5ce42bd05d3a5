"""Error messages that stay small: whatever a client sent (a million column names, a 10 kB
name), an error body names at most a few things, each cut short. Torch-free and dependency-free,
so the API can use it without loading the data stack."""

from __future__ import annotations

from collections.abc import Iterable


def short_names(names: Iterable[object], limit: int = 5, width: int = 40) -> str:
    """At most ``limit`` names, each cut to ``width`` characters, so error bodies stay small."""
    listed = [str(n) for n in names]
    shown = [n if len(n) <= width else n[: width - 3] + "..." for n in listed[:limit]]
    more = f" and {len(listed) - limit} more" if len(listed) > limit else ""
    return ", ".join(shown) + more
