"""sweep: hyperparameter-sweep and seed-variance studies for small neural networks."""
__version__ = "0.1.0"


def load(directory):
    """The runs of a results folder (``results/<name>``) as a pandas DataFrame, one row per run."""
    import pandas as pd
    from pathlib import Path
    path = Path(directory) / "runs.csv"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run the study (sweep run SPEC) or sweep export {directory}")
    return pd.read_csv(path)
