"""surface.py and fanova.py: the fitted surface, its smoothing-parameter search, and the functional
ANOVA of a fitted surface, on tables with known answers."""
import numpy as np
import pytest
from scipy.optimize import check_grad

from sweep.analysis import surface as SU
from sweep.analysis.fanova import term_variances
from sweep.analysis.surface import fit_surface, margin


def _table(rng, C=60, noise=0.01):
    u = rng.uniform(-4, 0, C)
    h = rng.integers(0, 3, C)
    y = -0.1 * (u + 2) ** 2 + np.array([-0.05, 0.0, 0.05])[h] + 0.03 * (u + 2) * np.array([-1, 0, 1])[h]
    return {"lr": 10 ** u, "hidden": np.array([3, 8, 32])[h]}, y + rng.normal(0, noise, C), u, h


def test_margin_is_centred_and_its_penalty_diagonal():
    x = 10 ** np.random.default_rng(0).uniform(-4, 0, 50)
    m = margin("lr", x, smooth=True, log=True)
    Z = m(x)
    np.testing.assert_allclose(Z.mean(axis=0), 0, atol=1e-12)          # functions average to 0
    assert (m.eig == 0).sum() == 1                  # null space: coefficients in a straight line, a function
    u = np.log10(x)                                 # linear in log lr up to the clamped end knots
    line = Z[:, m.eig == 0][:, 0]
    assert abs(np.corrcoef(line, u)[0, 1]) > 0.99
    cat = margin("init", np.array(["a", "b", "c", "a"]), smooth=False)
    np.testing.assert_allclose(cat(np.array(["a", "b", "c", "a"])).mean(axis=0), 0, atol=1e-12)
    assert cat.size == 2 and not cat.eig.any()


def test_reml_gradient_matches_finite_differences():
    vals, y, *_ = _table(np.random.default_rng(1))
    s = fit_surface(vals, y, smooth={"lr": True, "hidden": False}, log={"lr": True})
    Xw = s.X * s.w[:, None]
    args = (Xw.T @ s.X, Xw.T @ s.y, float((s.w * s.y) @ s.y), s.terms, len(y))
    rho = np.log(s.lam) * 0.5 + 0.3
    err = check_grad(lambda r: SU._reml(r, *args)[0], lambda r: SU._reml(r, *args)[1], rho, epsilon=1e-6)
    assert err < 1e-4 * max(1.0, np.linalg.norm(SU._reml(rho, *args)[1]))


def test_fit_recovers_a_known_surface_and_fellner_schall_finds_the_same_optimum():
    vals, y, u, h = _table(np.random.default_rng(2), C=120, noise=0.005)
    s = fit_surface(vals, y, smooth={"lr": True, "hidden": False}, log={"lr": True})
    truth = -0.1 * (u + 2) ** 2 + np.array([-0.05, 0.0, 0.05])[h] + 0.03 * (u + 2) * np.array([-1, 0, 1])[h]
    assert np.sqrt(np.mean((s.X @ s.beta - truth) ** 2)) < 0.004       # within the noise (sd 0.005)
    np.testing.assert_allclose(s.predict(vals), s.X @ s.beta, atol=1e-12)
    beta, edf, _ = SU.refit_select(s.X, s.terms, np.zeros(len(s.lam)), y[None], s.w[None], iterations=300, tol=1e-9)
    np.testing.assert_allclose(beta[0], s.beta, atol=1e-5)
    assert edf[0] == pytest.approx(s.edf, rel=1e-3)


def test_term_variances_are_the_functional_anova_of_the_fit():
    """Against a brute-force decomposition of the fitted function on the product of the observed
    marginals (every observed lr with every observed hidden)."""
    vals, y, *_ = _table(np.random.default_rng(3), C=30)
    s = fit_surface(vals, y, smooth={"lr": True, "hidden": False}, log={"lr": True})
    V = term_variances(s, s.beta[None], np.ones((1, 30)))[0]
    lr, hid = vals["lr"], vals["hidden"]
    L, Hh = np.meshgrid(lr, hid, indexing="ij")                          # (30, 30): lr_i with hidden_j
    F = s.predict({"lr": L.ravel(), "hidden": Hh.ravel()}).reshape(30, 30)
    m = F.mean()
    f_lr, f_h = F.mean(axis=1) - m, F.mean(axis=0) - m
    f_int = F - m - f_lr[:, None] - f_h[None, :]
    labels = [T.factors for T in s.terms]
    np.testing.assert_allclose(V[labels.index((0,))], np.mean(f_lr ** 2), rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(V[labels.index((1,))], np.mean(f_h ** 2), rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(V[labels.index((0, 1))], np.mean(f_int ** 2), rtol=1e-9, atol=1e-14)
    # resampling weights change the marginals: twice every configuration is the same measure
    np.testing.assert_allclose(term_variances(s, s.beta[None], np.full((1, 30), 2.0))[0], V, rtol=1e-12)


def test_wald_test_finds_a_real_term_and_not_an_absent_one():
    rng = np.random.default_rng(4)
    C = 80
    u, h, i = rng.uniform(-4, 0, C), rng.integers(0, 3, C), rng.integers(0, 3, C)
    y = -0.1 * (u + 2) ** 2 + 0.05 * np.array([-1, 0, 1])[h] + rng.normal(0, 0.01, C)   # init does nothing
    vals = {"lr": 10 ** u, "hidden": h, "init": np.array(["a", "b", "c"])[i]}
    s = fit_surface(vals, y, smooth={"lr": True, "hidden": False, "init": False}, log={"lr": True})
    p = {tuple(s.names[j] for j in T.factors): pv for T, (_, pv) in zip(s.terms, s.term_tests())}
    assert p[("lr",)] < 1e-6 and p[("hidden",)] < 1e-6
    assert p[("init",)] > 0.01
