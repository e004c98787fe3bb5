"""The stagnation finding (sweep.findings.failures.stagnation) on tiny hand-made runs tables: its exact
sentences with and without the optional ``frozen_step`` and ``stagnation_tol`` columns."""
import types

import numpy as np
import pandas as pd

from sweep.findings.failures import stagnation

TAIL = ("In 75% of all runs the trained network's training accuracy equals the untrained network's. The "
        "weights barely moved (median ‖W−W₀‖/‖W₀‖ = 0.001) although the gradient did not vanish (median "
        "last/first gradient norm 1.00): the optimiser's steps shrank to nothing, not the gradient.")


def _analysis(**extra) -> types.SimpleNamespace:
    """Four runs of 50 steps that stagnated at steps 4-5, three of them at their untrained accuracy."""
    df = pd.DataFrame({"stagnation_step": [4.0, 5.0, 5.0, 5.0], "train_acc": [0.6, 0.6, 0.6, 0.7],
                       "init_train_acc": [0.6, 0.6, 0.6, 0.5], "rel_weight_change": [0.001] * 4,
                       "grad_norm_first": [2.0] * 4, "grad_norm_last": [2.0] * 4, "steps": [50] * 4, **extra})
    return types.SimpleNamespace(runs=types.SimpleNamespace(df=df))


def test_both_the_tolerance_step_and_the_frozen_step():
    a = _analysis(stagnation_tol=1e-6, frozen_step=[15.0, 15.0, 15.0, 18.0])
    assert stagnation(a).text == (
        "The training loss stopped changing by more than 1e-6 (relative) in 100% of runs, from step 5 "
        "(median; 4–5) of 50, and was bit-for-bit frozen (exactly the same float to the end) in 100% of runs, "
        "from step 15 (median; 15–18) on. A cost printed in full (as Python prints a float) looks stagnant "
        "from the frozen step, not from the tolerance step. " + TAIL)


def test_some_runs_frozen_and_the_lower_median():
    a = _analysis(stagnation_tol=1e-5, frozen_step=[16.0, 17.0, np.nan, np.nan])
    assert ("by more than 1e-5 (relative)" in stagnation(a).text
            and "frozen (exactly the same float to the end) in 50% of runs, from step 16 (median; 16–17) on"
            in stagnation(a).text)


def test_never_frozen():
    a = _analysis(stagnation_tol=1e-6, frozen_step=[np.nan] * 4)
    assert stagnation(a).text == (
        "The training loss stopped changing by more than 1e-6 (relative) in 100% of runs, from step 5 "
        "(median; 4–5) of 50; it was never bit-for-bit frozen (the same float to the end), so a cost printed "
        "in full still changes in its last digits. " + TAIL)


def test_older_tables_without_the_new_columns():
    """runs.csv from before frozen_step / stagnation_tol (or a foreign table): the tolerance sentence alone."""
    assert stagnation(_analysis()).text == (
        "The training loss stopped changing by more than the stagnation tolerance (relative) in 100% of runs, "
        "from step 5 (median; 4–5) of 50. " + TAIL)


def test_no_finding_when_most_runs_did_not_stagnate():
    a = _analysis(frozen_step=[15.0] * 4)
    a.runs.df["stagnation_step"] = [4.0, np.nan, np.nan, np.nan]
    assert stagnation(a) is None
