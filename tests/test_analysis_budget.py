"""budget.py (expected best against the number of trials) and confirm.py (selection against fresh seeds)."""
import itertools

import numpy as np
import pandas as pd
import pytest

from sweep.analysis import prepare
from sweep.analysis.budget import expected_best
from sweep.analysis.confirm import confirm_table, kendall


def test_expected_best_matches_enumeration():
    v = np.array([0.3, 0.9, 0.5, 0.7])
    out = expected_best(v, n_boot=50).set_index("n")
    for n in (1, 2, 3):          # every ordered draw of n trials with replacement, equally likely
        brute = np.mean([max(c) for c in itertools.product(v, repeat=n)])
        assert out.loc[n, "expected"] == pytest.approx(brute)
    assert out.loc[1, "expected"] == pytest.approx(v.mean())
    assert out["expected"].is_monotonic_increasing and (out["ci_low"] <= out["ci_high"]).all()
    low = expected_best(v, higher_is_better=False, n_boot=50).set_index("n")
    assert low.loc[2, "expected"] == pytest.approx(np.mean([min(c) for c in itertools.product(v, repeat=2)]))
    assert expected_best([0.5]).empty


def test_confirm_table_joins_on_config_id_and_measures_the_drop():
    rows = []
    for cid, lr, mean in (("t1", 0.01, 0.95), ("t2", 0.02, 0.93), ("t3", 0.05, 0.90)):
        rows += [{"config_id": cid, "lr": lr, "seed": s, "acc": mean + 0.001 * (s % 3)} for s in range(10)]
    runs = prepare(pd.DataFrame(rows), "acc", ["lr"], ["seed"])
    fresh = pd.DataFrame([{"config_id": cid, "acc": m + 0.001 * (s % 2)} for cid, m in
                          (("t1", 0.92), ("t2", 0.93), ("t3", 0.89)) for s in range(20)])
    t = confirm_table(runs, fresh, n_boot=200)
    assert list(t["config_id"]) == ["t1", "t2", "t3"] and list(t["config"]) == ["lr=0.01", "lr=0.02", "lr=0.05"]
    assert list(t["selection_rank"]) == [1, 2, 3] and list(t["confirmed_rank"]) == [2, 1, 3]
    assert t.loc[0, "drop"] == pytest.approx(0.9509 - 0.9205, abs=1e-9)    # positive: got worse
    assert t.loc[0, "drop_ci_low"] > 0
    assert kendall(t) == pytest.approx(1 / 3)
    assert confirm_table(runs, fresh.assign(config_id="other")).empty
