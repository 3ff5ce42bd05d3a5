"""One router per resource; :func:`hpo_service.api.app.create_app` includes them all."""
