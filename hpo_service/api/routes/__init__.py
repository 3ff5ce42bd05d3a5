"""One router per resource; :func:`hpo_service.app.create_app` includes them all."""
