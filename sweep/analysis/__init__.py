"""Analysis of a runs table (pandas in, pandas out). Definitions: ``../shared/STATISTICS.md``."""
from .table import SEED_COLS, AnalysisError, Runs, infer_factors, prepare

__all__ = ["SEED_COLS", "AnalysisError", "Runs", "infer_factors", "prepare"]
