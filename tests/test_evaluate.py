"""One trial in a worker: warm-up leaves results untouched; the cost estimate orders configurations."""
import math
from dataclasses import replace

from sweep.evaluate import estimate_cost, run_config, warm_up
from sweep.spec import load_spec


def _same(a, b) -> bool:
    return a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b))


def test_warm_up_changes_no_result():
    spec = load_spec("studies/default.toml")
    seeds = spec.seeds.tuples()[:3]
    before = run_config(spec, seeds)
    assert warm_up(spec) >= 0
    after = run_config(spec, seeds)
    for x, y in zip(before["runs"], after["runs"]):
        assert all(_same(x[k], y[k]) for k in x if k != "duration_s")
    assert before["curves"] == after["curves"]


def test_cost_grows_with_width_depth_budget_and_seeds():
    spec = load_spec("studies/default.toml")
    base = estimate_cost(spec, 10)
    wider = replace(spec, model=replace(spec.model, hidden=(64,)))
    deeper = replace(spec, model=replace(spec.model, hidden=(*spec.model.hidden, 16)))
    longer = replace(spec, train=replace(spec.train, iterations=2 * spec.train.iterations))
    assert estimate_cost(wider, 10) > base and estimate_cost(deeper, 10) > base
    assert estimate_cost(longer, 10) > 1.9 * base
    assert estimate_cost(spec, 20) == 2 * base
    # epochs of minibatches: the same samples processed cost about the same, plus per-step overhead
    mini = replace(spec, train=replace(spec.train, iterations=None, epochs=10, batch_size=32))
    full = replace(spec, train=replace(spec.train, iterations=10, batch_size=None))
    assert estimate_cost(mini, 1) > estimate_cost(full, 1)
