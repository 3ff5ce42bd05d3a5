"""How ``hpo`` presents itself: help without type placeholders, usage errors on one line.

Typer 0.2x writes every option's Python type into the help (``--verbose <bool>``, ``--device
<str>``) and wraps required arguments in braces (``hpo run [OPTIONS] {file}``); users read those
as literal syntax. :func:`plain_help` gives each parameter of the built click command a class
that shows click's classic words instead: ``FILE``, ``--workers INTEGER``, nothing after a flag.
Usage errors (a missing argument, an option out of range) used to be drawn in a box, wrapped at
80 columns; :func:`invoke` prints them through :func:`.common.fail`, one unwrapped line, exit 2.
``tests/test_cli_help.py`` pins both against the installed typer.
"""

from __future__ import annotations

import sys
from typing import Any

import typer
from typer import _click as click  # typer 0.2x vendors click; its commands are built from this
from typer.core import TyperArgument, TyperGroup, TyperOption

from hpo_service.cli.common import fail, is_known_error

#: typer's type labels (``<int range>``, ``<list[str]>``) -> click's classic placeholders.
WORDS = {"int": "INTEGER", "float": "NUMBER", "str": "TEXT", "path": "PATH", "file": "FILE"}


def _word(param: TyperOption, ctx: click.Context) -> str:
    """click's classic placeholder for a value: INTEGER, NUMBER, PATH, TEXT..."""
    label = param.display_type(ctx).strip("<>")
    inner = label.removeprefix("list[").rstrip("]").split()[0] if label else "value"
    return WORDS.get(inner, inner.upper())


class PlainOption(TyperOption):
    """An option whose help shows ``--workers INTEGER`` and nothing after a flag."""

    def display_type_rich(self, ctx: click.Context) -> str | None:
        if self.is_flag or self.count:
            return None
        return self.metavar or _word(self, ctx)


class PlainArgument(TyperArgument):
    """An argument shown as ``FILE`` (``[FILE]`` when optional), never ``{file} <path>``."""

    def display_type_rich(self, ctx: click.Context) -> str | None:
        return None

    def _rich_display_name(self) -> str:
        name = (self.metavar or self.name or "ARG").upper()
        return name if self.nargs == 1 else f"{name}..."

    def _usage_display_name(self) -> str:
        name = self._rich_display_name()
        return name if self.required else f"[{name}]"


def plain_help(command: click.Command) -> click.Command:
    """Give every parameter of ``command`` and its subcommands the plain presentation (the
    ``--help`` option too, which click builds on first use and then keeps)."""
    help_option = command.get_help_option(click.core.Context(command))
    for param in [*command.params, *([help_option] if help_option else [])]:
        if type(param) is TyperOption:
            param.__class__ = PlainOption
        elif type(param) is TyperArgument:
            param.__class__ = PlainArgument
    if isinstance(command, TyperGroup):
        for sub in command.commands.values():
            if sub.short_help is None and sub.help:  # the list shows one paragraph, unwrapped
                sub.short_help = " ".join(sub.help.split("\n\n")[0].split())
            plain_help(sub)
    return command


def invoke(app: typer.Typer, args: list[str] | None = None) -> int:
    """Run the ``hpo`` app; returns the exit code. Usage errors and the user's own mistakes
    (:func:`.common.is_known_error`) are one line on stderr and exit 2; anything else is a bug
    and keeps its traceback."""
    command = plain_help(typer.main.get_command(app))
    try:
        code: Any = command.main(args=args, prog_name="hpo", standalone_mode=False)
    except click.exceptions.UsageError as error:
        path = error.ctx.command_path if error.ctx is not None else "hpo"
        fail(f"{error.format_message()} (see `{path} --help`)")
        return 2
    except typer.Abort:
        return 130
    except Exception as error:
        if not is_known_error(error):
            raise
        fail(str(error))
        return 2
    return code if isinstance(code, int) else 0


def main() -> None:
    from hpo_service.cli import app

    sys.exit(invoke(app))
