"""hpo-service: hyperparameter optimisation for recurrent networks."""

__version__ = "0.1.0"
