"""The ``hpo`` command's presentation (hpo_service.cli.help), pinned against the installed typer:
every command's help is free of typer's type placeholders (``<bool>``, ``<str>``, ``{file}``),
and usage errors are one unwrapped line with exit 2, never a box wrapped at 80 columns."""

from __future__ import annotations

import re

import pytest
import typer

from hpo_service.cli import app
from hpo_service.cli.help import invoke, plain_help

PLACEHOLDER = re.compile(r"<(bool|str|int|float|path|list\[[a-z]+\])[^>]*>|\{[a-z_]+\}")


def command_paths() -> list[list[str]]:
    root = typer.main.get_command(app)
    paths: list[list[str]] = [[]]
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        paths.append([name])
        for sub in getattr(command, "commands", {}):
            paths.append([name, sub])
    return paths


def test_every_help_page_is_free_of_type_placeholders(capsys: pytest.CaptureFixture[str]) -> None:
    paths = command_paths()
    assert ["study", "extend"] in paths and ["run"] in paths
    for path in paths:
        assert invoke(app, [*path, "--help"]) == 0
        shown = capsys.readouterr().out
        assert "Usage: hpo" in shown, path
        assert not PLACEHOLDER.search(shown), (path, PLACEHOLDER.search(shown))


def test_values_flags_and_arguments_read_as_click_words(
    capsys: pytest.CaptureFixture[str],
) -> None:
    invoke(app, ["run", "--help"])
    shown = capsys.readouterr().out
    assert "Usage: hpo run [OPTIONS] FILE" in shown
    assert re.search(r"--workers\s+INTEGER", shown) and re.search(r"--device\s+TEXT", shown)
    assert re.search(r"--verbose\s+-v\s+Show the workers' log", shown)  # a flag: no type


def test_the_command_list_shows_each_summary_on_joined_lines(
    capsys: pytest.CaptureFixture[str],
) -> None:
    invoke(app, ["--help"])
    shown = capsys.readouterr().out
    assert re.search(r"show progress, then print the best trial", " ".join(shown.split()))
    plain_help(typer.main.get_command(app))  # idempotent on a built command


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "--workers", "0", "x.yaml"], "Invalid value for '--workers'"),
        (["study", "show"], "Missing argument 'name'"),
        (["study", "creat", "x"], "No such command 'creat'. Did you mean 'create'?"),
        (["study", "extend", "x"], "Missing option '--trials'"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(
    args: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert invoke(app, args) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
    assert "see `hpo" in lines[0] and "╭" not in captured.err
