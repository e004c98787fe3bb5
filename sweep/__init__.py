"""sweep: hyperparameter-sweep and seed-variance studies for small neural networks."""
__version__ = "0.1.0"
