"""The ``hpo`` command. Each sub-module registers its commands on :data:`app`.

Known errors (bad spec, unknown study, outdated schema, missing dataset) print one message and
exit 2; they never show a traceback.
"""

from __future__ import annotations

import sys

import typer

from hpo_service.cli.common import fail, is_known_error

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

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own progress output says enough
    try:
        app()
    except Exception as error:
        if not is_known_error(error):
            raise
        fail(str(error))
        sys.exit(2)
