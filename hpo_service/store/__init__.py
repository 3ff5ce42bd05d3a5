"""Persistence: engines and sessions, migrations, the service's tables, studies and uploads.

Only :mod:`hpo_service.store.db` builds engines; only :mod:`hpo_service.store.optuna_tables`
reads Optuna's tables with SQL.
"""
