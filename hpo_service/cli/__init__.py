"""The ``hpo`` command. Each sub-module registers its commands on :data:`app`.

Known errors (bad spec, unknown study, outdated schema, missing dataset) and usage errors print
one unwrapped line and exit 2; they never show a traceback (:mod:`.help`).
"""

from __future__ import annotations

import sys

import typer

app = typer.Typer(
    help="Hyperparameter optimisation service for LSTM/GRU models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register_all() -> None:
    from hpo_service.cli import plot, predict, run, serve, studies, train

    for module in (studies, run, train, predict, serve, plot):
        module.register(app)


_register_all()


def main() -> None:
    import optuna

    from hpo_service.cli.help import invoke

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own progress output says enough
    sys.exit(invoke(app))
