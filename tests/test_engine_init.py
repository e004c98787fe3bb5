import numpy as np
import pytest

from sweep.engine import init_params, parse_scheme


def _w(scheme, fan_in=400, fan_out=300, seeds=(0,), **kw):
    return init_params(fan_in, [fan_out], 1, scheme, seeds, **kw)[0]


@pytest.mark.parametrize("scheme,std", [
    ("xavier_normal", np.sqrt(2 / 700)), ("he_normal", np.sqrt(2 / 400)), ("lecun_normal", np.sqrt(1 / 400)),
    ("normal:0.01", 0.01), ("xavier_uniform", np.sqrt(6 / 700) / np.sqrt(3)),
    ("he_uniform", np.sqrt(6 / 400) / np.sqrt(3)), ("uniform:0.2", 0.2 / np.sqrt(3)),
    ("posted", np.sqrt(2 / 701)),
])
def test_scheme_scale(scheme, std):
    W = _w(scheme)
    weights = W[0, :, 1:]
    assert weights.std() == pytest.approx(std, rel=0.02)
    assert abs(weights.mean()) < 0.02 * std * 10
    if scheme.startswith(("xavier_uniform", "he_uniform", "uniform")):
        assert np.abs(weights).max() <= std * np.sqrt(3)
    if scheme == "posted":   # bias drawn with the weights
        assert W[0, :, 0].std() == pytest.approx(std, rel=0.15)
    else:                    # biases zero by default
        assert np.all(W[0, :, 0] == 0)


def test_zeros_and_bias_schemes():
    assert np.all(_w("zeros") == 0)
    assert np.all(_w("zeros", bias_init="const:0.5")[0, :, 0] == 0.5)
    assert _w("zeros", bias_init="normal:0.1")[0, :, 0].std() == pytest.approx(0.1, rel=0.2)


def test_each_network_depends_only_on_its_own_seed_and_scheme():
    alone = init_params(5, [4, 3], 2, "he_normal", [7])
    batch = init_params(5, [4, 3], 2, ["xavier_normal", "he_normal", "zeros"], [1, 7, 2])
    for a, b in zip(alone, batch):
        assert np.array_equal(a[0], b[1])
    assert not np.array_equal(batch[0][0], init_params(5, [4, 3], 2, "xavier_normal", [2])[0][0])


def test_float32_is_rounded_float64():
    w64 = init_params(3, [4], 1, "xavier_normal", [3])
    w32 = init_params(3, [4], 1, "xavier_normal", [3], dtype="float32")
    assert w32[0].dtype == np.float32
    assert np.array_equal(w32[0], w64[0].astype(np.float32))


@pytest.mark.parametrize("bad,match", [
    ("glorot", "unknown init 'glorot'; allowed: he_normal"), ("normal", "needs a number"),
    ("normal:-1", "> 0"), ("normal:abc", "not a number"), ("xavier_normal:2", "unknown init"), (3, "string"),
])
def test_bad_scheme_messages(bad, match):
    with pytest.raises(ValueError, match=match):
        parse_scheme(bad)


def test_scheme_count_must_match_seeds():
    with pytest.raises(ValueError, match="2 init schemes for 3 seeds"):
        init_params(2, [2], 1, ["zeros", "zeros"], [0, 1, 2])
