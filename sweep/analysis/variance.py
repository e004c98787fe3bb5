"""Where the variance of a metric comes from (the ``variance.csv`` table): configurations vs seeds,
factors and their interactions, the seed sources, and conditional shares within the levels of the
most important factor. Definitions: ``../shared/STATISTICS.md`` sections 1-4 and 8.

The pieces live in their own modules: ``factorial.py`` (one-way, balanced factorial and Type II sums
of squares), ``sources.py`` (seed-source layouts and the mixed model of configurations x seed sources),
``sampled.py`` (the fitted surface, when a factor is continuous), ``importance.py`` (Optuna's
importances) and ``resample.py`` (the bootstrap). ``Y`` is the ``(C, S)`` matrix of outcomes; ``W`` the
``(1 + B, S)`` bootstrap weights over seed tuples (row 0 the estimate).

Confidence intervals (95%; which one each row carries is also said in its ``note``):

* ``eta2`` rows (observed shares; global, factorial, conditional) and ``typeII`` rows: basic (pivotal)
  bootstrap on the logit scale over seed tuples paired across configurations, bias-corrected (pivot:
  the bootstrap population's own expected observed share E*[SS*] / E*[SS*_total]) and expanded for S
  seeds (Hesterberg 2015). Target: the expected observed share at this S, E[SS_X] / E[SS_total].
* ``component`` rows of scope global: replicate designs: basic bootstrap of the untruncated one-way
  component share, bias-corrected and expanded. Crossed and nested seed designs: generalized
  confidence interval of the mixed model (``sources.py``), which accounts for seed effects shared by
  the configurations (a one-way analysis counts them as noise within configurations but they cancel
  between configurations). Target: sigma2_config / (sigma2_config + sigma2_seed).
* ``component`` rows of scope "seed sources": generalized confidence intervals of the mixed model.
* ``sd`` / ``variance`` rows (conditional scopes): percentile bootstrap.

Measured coverage of every row type, with the designs and dates: ``docs/validation.md`` (sampled
spaces), ``docs/validation_sources.md`` (seed sources and crossed designs)
(``make validate``).
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

from . import resample
from .factorial import (HIGHER, RESIDUAL, _balanced_df, _balanced_factorial, _components, _design, _factors, _Factors,
                        _oneway, _OneWay, _safe_div, _statsmodels_typeII, _term_label, _term_ss, _typeII,
                        factorial_ss)
from .importance import IMPORTANCE_COLUMNS, optuna_importance
from .ranges import cut
from .sampled import SurfaceFit, surface_rows
from .sources import (MixedFit, Pivots, SeedDesign, expected_ss_pivots, fit_mixed, pivot_draws, row_groups, seed_design,
                      share_pivots)
from .table import Runs

__all__ = ["COLUMNS", "IMPORTANCE_COLUMNS", "decompose", "decompose_fit", "factorial_ss", "optuna_importance"]

COLUMNS: list[str] = ["scope", "source", "share", "ci_low", "ci_high", "method", "note"]

GLOBAL = "global"
SEED_SCOPE = "seed sources"
ROBUST_SCOPE = "seed sources, without the noisiest configurations"
NOISY_RATIO = 10.0         # a configuration whose seed variance exceeds this multiple of the median dominates
BETWEEN = "between configurations"
WITHIN = "seed (within configuration)"
ICC = "reliability (ICC)"
REPLICATE_NOTE = ("replicate design: init and order were drawn together and the data split was held fixed; "
                  "use a crossed design ([seeds] init/order/split) to separate them")
_TIMES = " \u00d7 "  # " × "
GPQ_DRAWS = 4000           # pivot draws of a generalized interval (cheap: a few mean squares each)


# --------------------------------------------------------------------------------------------- rows

# Which interval each row carries (also written, shortened, into every row's ``note``).
ETA_CI = ("CI: basic bootstrap (logit scale, expanded for S seeds), bias-corrected: pivot = the resampled "
          "seeds' expected observed share; covers E[SS]/E[SS_total] at this S")
COMP_CI = ("CI: basic bootstrap of the untruncated share (expanded for S seeds), bias-corrected: pivot = the "
           "resampled population's components (MS_between/S, MS_within (S-1)/S)")
TYPEII_CI = "CI: basic bootstrap as for eta2 (logit scale, expanded, bias-corrected); approximate for Type II SS"
PCT_CI = "CI: percentile bootstrap"
GPQ_CI = ("CI: generalized confidence interval (pivots of the mean squares, Weerahandi 1993); assumes normal "
          "effects and equal seed variance in every configuration")
_levels = resample.expanded_levels


def _row(scope: str, source: str, values: np.ndarray | float, method: str, note: str = "",
         ci: bool = True, pivot: float | None = None, raw: np.ndarray | None = None,
         levels: tuple[float, float] = (2.5, 97.5), logit: bool = False) -> dict:
    """One output row from ``values`` of shape ``(1 + B,)``: entry 0 is the estimate, the rest draws.

    CI: percentile of ``values[1:]`` when ``pivot`` is None, else the basic interval
    (``resample.basic_ci``) of ``raw`` (default ``values``; e.g. the untruncated share of a truncated
    component) around ``pivot``; ``levels`` are the percentile levels used."""
    values = np.atleast_1d(np.asarray(values, dtype=float))
    if not ci or values.size < 2:
        lo, hi = math.nan, math.nan
    elif pivot is None:
        lo, hi = resample.percentile_ci(values[1:], levels)
    else:
        r = values if raw is None else np.atleast_1d(np.asarray(raw, dtype=float))
        lo, hi = resample.basic_ci(float(r[0]), r[1:], float(pivot), levels, logit)
    return {"scope": scope, "source": source, "share": float(values[0]), "ci_low": lo, "ci_high": hi,
            "method": method, "note": note}


def _eta_row(scope: str, source: str, ss: np.ndarray, total: np.ndarray, method: str, note: str = "",
             n_units: int | None = None) -> dict:
    """An observed-share row ``ss / total`` (each ``(1 + B,)``) with the basic bootstrap interval on
    the logit scale, expanded for ``n_units`` resampled seed tuples (:func:`_levels`), whose pivot is
    the bootstrap population's expected observed share E*[SS*] / E*[SS*_total], estimated by the ratio
    of the bootstrap means of the two sums of squares. (Resampling seeds adds seed noise to the
    configuration means a second time, so SS*_between reads high by about the seed noise; the pivot
    carries the same excess, and the basic interval subtracts it.)"""
    share = _safe_div(ss, total)
    pivot = None
    if share.size > 1:
        ok = np.isfinite(ss[1:]) & np.isfinite(total[1:])
        den = float(total[1:][ok].mean()) if ok.any() else math.nan
        pivot = float(ss[1:][ok].mean()) / den if ok.any() and den > 0 else math.nan
    ci = (TYPEII_CI if method == "typeII" else ETA_CI) if pivot is not None else ""
    return _row(scope, source, share, method, "; ".join(filter(None, [note, ci])), pivot=pivot,
                levels=_levels(n_units), logit=True)



# ------------------------------------------------------------------------------------- seed sources

def _seed_source_rows(design: SeedDesign, fit: MixedFit | None, piv: Pivots | None,
                      scope: str = SEED_SCOPE, extra: str = "") -> list[dict]:
    """Scope "seed sources": one row per source part of a crossed or nested design (shared,
    configuration-specific, interactions, residual; shares of the seed variance with generalized
    intervals), or one row naming what cannot be separated."""
    cols = ", ".join(c for g in design.columns for c in g)
    if design.kind == "replicate":
        sweep_own = set(design.columns[0]) == {"seed_init", "seed_order"}
        note = REPLICATE_NOTE if sweep_own else (f"replicate design: the seed columns {cols} change together "
                                                 "(one source), so their shares cannot be separated")
        label = "seed (init and order together)" if sweep_own else f"seed ({' and '.join(design.columns[0])} together)"
        return [_row(SEED_SCOPE, label, 1.0, "component", note, ci=False)]
    if design.kind == "single":
        name = design.names[0]
        own = name in ("init", "order", "split")
        note = (f"only the {name} seed varied; the other seed sources were held fixed" if own else
                f"one seed column ({name}): every seed is one source, so there is nothing to separate")
        return [_row(SEED_SCOPE, f"seed ({name})", 1.0, "component", note, ci=False)]
    if design.kind == "other":
        return [_row(SEED_SCOPE, "seed (all sources together)", 1.0, "component",
                     f"the seed sources ({', '.join(design.names)}) vary but form neither a full crossing nor a "
                     "balanced nesting within configurations, so their shares cannot be separated", ci=False)]
    if design.kind not in ("crossed", "nested"):
        return []
    if fit is None:
        return [_row(SEED_SCOPE, "seed (all sources together)", 1.0, "component",
                     "no configuration has every seed tuple (runs missing)", ci=False)]
    groups = row_groups(fit, design)
    est = share_pivots(groups, np.maximum(fit.comps, 0.0))
    draws = share_pivots(groups, piv.comps, piv.total) if piv is not None else None
    base = (f"share of the seed variance; mixed model, configurations fixed x seed sources random ({design.layout}),"
            f" ANOVA estimators on {fit.n_configs} configurations")
    if fit.n_configs < 2:
        base += "; one configuration: a source's shared and configuration-specific parts cannot be separated"
    if fit.left_out:
        base += f"; {fit.left_out} configurations with missing runs left out"
    rows = []
    for r, (label, ix, _, _) in enumerate(groups):
        note = base
        neg = [float(fit.comps[i]) for i in ix if fit.comps[i] < 0]
        if neg:
            note += f"; estimate negative ({sum(neg):.3g}), truncated at 0"
        lo, hi = resample.percentile_ci(draws[:, r]) if draws is not None else (math.nan, math.nan)
        rows.append({"scope": scope, "source": label, "share": float(est[r]), "ci_low": lo, "ci_high": hi,
                     "method": "component",
                     "note": "; ".join(filter(None, [extra, note, GPQ_CI if draws is not None else ""]))})
    return rows


def _robust_source_rows(Y: np.ndarray, configs: list[str], design: SeedDesign, fit: MixedFit | None,
                        n_draws: int, rng: np.random.Generator) -> list[dict]:
    """The seed-source rows again without the configurations whose seed variance is more than
    ``NOISY_RATIO`` times the median one: pooled shares weight each configuration by its seed variance,
    so one unstable configuration can decide them for all (the model assumes equal seed variances)."""
    if fit is None or fit.n_configs < 3 or not n_draws:
        return []
    complete = np.isfinite(Y).all(axis=1)
    var = np.var(Y[complete], axis=1, ddof=1)
    med = float(np.median(var))
    noisy = var > NOISY_RATIO * med if med > 0 else np.zeros(var.size, bool)
    if not noisy.any() or noisy.sum() > var.size // 2:
        return []
    names = [c for c, n in zip(np.asarray(configs)[complete], noisy) if n]
    rest = fit_mixed(Y[complete][~noisy], design)
    shown = " and ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    extra = (f"without the configuration{'s' if len(names) > 1 else ''} {shown} (seed variance up to "
             f"{float(var[noisy].max() / med):.0f}x the median configuration's)")
    return _seed_source_rows(design, rest, pivot_draws(rest, n_draws, rng), ROBUST_SCOPE, extra)


def _mixed_component_rows(fit: MixedFit, piv: Pivots | None) -> list[dict]:
    """Global component rows of a crossed or nested seed design from the mixed model: the
    configurations' variance against the whole seed variance (shared parts included)."""
    seed = float(np.maximum(fit.comps, 0.0).sum())
    theta = max(fit.theta, 0.0)
    share = theta / (theta + seed) if theta + seed > 0 else math.nan
    lo = hi = math.nan
    if piv is not None:
        lo, hi = resample.percentile_ci(_safe_div(piv.theta, piv.theta + piv.total))
    note = ("mixed model: configurations fixed x seed sources random (shared and configuration-specific seed "
            f"effects); sigma2_config = sum (mu_c - mu)^2 / (C - 1); {GPQ_CI if piv is not None else 'no CI'}")
    if fit.theta < 0:
        note += f"; negative estimate ({fit.theta:.3g}) truncated at 0"
    row = {"scope": GLOBAL, "method": "component", "note": note}
    return [{**row, "source": BETWEEN, "share": share, "ci_low": lo, "ci_high": hi},
            {**row, "source": WITHIN, "share": 1.0 - share, "ci_low": 1.0 - hi, "ci_high": 1.0 - lo},
            {**row, "source": ICC, "share": share, "ci_low": lo, "ci_high": hi,
             "note": "sigma2_config / (sigma2_config + sigma2_seed); " + note}]


def _fixed_terms(ow: _OneWay, fac: _Factors) -> dict[str, tuple[float, int]]:
    """SS (estimate) and df of the balanced factorial terms, which partition SS_between."""
    C = ow.mean.shape[0]
    ss = _balanced_factorial(_OneWay(ow.n[:, :1], ow.mean[:, :1], ow.ss_within[:1], ow.ss_between[:1],
                                     ow.ss_total[:1], ow.groups[:1]), fac)
    dfs = _balanced_df(fac, C, int(ow.n[:, 0].sum()))
    return {k: (float(v[0]), dfs[k]) for k, v in ss.items() if k not in ("total", RESIDUAL)}


def _mixed_eta_intervals(rows: list[dict], fixed: dict[str, tuple[float, int]], within: str | None,
                         piv: Pivots, rng: np.random.Generator) -> None:
    """Replace the intervals of eta2 ``rows`` (in place) by generalized intervals of the mixed model:
    ``fixed`` maps each between-configuration row to its SS and df (they partition SS_between),
    ``within`` names the row of the within-configuration SS. The target stays E[SS_X] / E[SS_total]."""
    e_ss = {name: expected_ss_pivots(piv, ss, df, rng) for name, (ss, df) in fixed.items()}
    total = sum(e_ss.values()) + piv.within
    if within is not None:
        e_ss[within] = piv.within
    for r in rows:
        if r["source"] in e_ss:
            r["ci_low"], r["ci_high"] = resample.percentile_ci(_safe_div(e_ss[r["source"]], total))
            keep = [p for p in r["note"].split("; ") if p and not p.startswith("CI:") and "bootstrap draws" not in p
                    and not p.startswith(("covers E[SS]", "pivot =", "bias-corrected"))]
            r["note"] = "; ".join(keep + [GPQ_CI, "seed effects shared by the configurations cancel between them "
                                          "(mixed model)"])


def _share_rows(scope: str, ow: _OneWay, single: bool, note0: str = "", n_units: int | None = None) -> list[dict]:
    """eta2 rows: between configurations and seed within configuration, ``(1 + B,)`` each."""
    tot = ow.ss_total
    zero = np.all(tot[:1] <= 0)
    note_zero = "no variation at all: shares undefined" if zero else ""
    if single:
        return [_row(scope, WITHIN, 1.0, "eta2", "single configuration: all variation is seed variation",
                     ci=False)]
    return [_eta_row(scope, BETWEEN, ow.ss_between, tot, "eta2", note0 or note_zero, n_units),
            _eta_row(scope, WITHIN, ow.ss_within, tot, "eta2", note_zero, n_units)]


def _component_rows(ow: _OneWay, n_units: int | None = None) -> list[dict]:
    s_cfg, s_seed, raw = _components(ow)
    tot = s_cfg + s_seed
    note_c = ""
    if np.isfinite(raw[0]) and raw[0] < 0:
        note_c = f"negative estimate ({raw[0]:.3g}) truncated at 0"
    if not np.isfinite(s_seed[0]):
        note = "needs two or more configurations and two or more runs in some configuration"
        return [_row(GLOBAL, s, math.nan, "component", note, ci=False) for s in (BETWEEN, WITHIN, ICC)]
    share_c = _safe_div(s_cfg, tot)
    share_s = _safe_div(s_seed, tot)
    # basic interval on the untruncated share (no pile-up at 0), pivoting on the bootstrap
    # population's own components: its configurations' means are the observed means (variance
    # MS_between / n0) and its seed variance is the plug-in one, SS_within / N (= MS_within (S-1)/S)
    raw_c = _safe_div(raw, raw + s_seed)
    N, C = float(ow.n[:, 0].sum()), int(ow.groups[0])
    pivot_c = math.nan
    if C >= 2 and N > C:
        n0 = (N - float((ow.n[:, 0] ** 2).sum()) / N) / (C - 1)
        v_cfg, v_seed = float(ow.ss_between[0]) / (C - 1) / n0, float(ow.ss_within[0]) / N
        pivot_c = v_cfg / (v_cfg + v_seed) if v_cfg + v_seed > 0 else math.nan
    balanced = np.all(ow.n[:, 0] == ow.n[0, 0])
    how = "one-way random effects, (MS_between - MS_within) / S" if balanced else \
        "one-way random effects, (MS_between - MS_within) / n0 (unequal group sizes)"
    ci = COMP_CI if balanced else COMP_CI.replace("MS_between/S,", "MS_between/n0,").replace("MS_within (S-1)/S",
                                                                                          "SS_within/N")
    lv = _levels(n_units)
    return [_row(GLOBAL, BETWEEN, share_c, "component", "; ".join(filter(None, [how, note_c, ci])),
                 pivot=pivot_c, raw=raw_c, levels=lv),
            _row(GLOBAL, WITHIN, share_s, "component", "; ".join([how, ci]), pivot=1.0 - pivot_c,
                 raw=1.0 - raw_c, levels=lv),
            _row(GLOBAL, ICC, share_c, "component",
                 "; ".join(filter(None, ["sigma2_config / (sigma2_config + sigma2_seed)", note_c, ci])),
                 pivot=pivot_c, raw=raw_c, levels=lv)]


def _factorial_rows(runs: Runs, Y: np.ndarray, W: np.ndarray, ow: _OneWay,
                    fac: _Factors) -> tuple[list[dict], dict[str, float]]:
    """Factorial rows and the point estimate of each factor's main-effect share."""
    k = len(fac.names)
    if k == 0:
        return [], {}
    if runs.balanced and fac.full_grid:
        ss = _balanced_factorial(ow, fac)
        tot = ss.pop("total")
        rows = [_eta_row(GLOBAL, src, v, tot, "eta2",
                         "everything between cells not explained by main effects and two-way interactions"
                         if src == HIGHER else "", W.shape[1])
                for src, v in ss.items()]
        return rows, {f: rows[a]["share"] for a, f in enumerate(fac.names)}

    n_missing = int(np.isnan(Y).sum())
    why = []
    if not runs.balanced:
        why.append(f"design unbalanced: {n_missing} of {Y.size} runs missing/excluded "
                   f"({runs.dropped} excluded for an undefined metric)")
    if not fac.full_grid:
        why.append("the configurations do not cover every combination of the factors")
    ss, ssr2, rank = _typeII(Y, W, fac)
    note = "; ".join(why) + "; Type II SS (OLS up to two-way interactions) / total SS; shares need not add to 1"
    X, _, _ = _design(fac, np.arange(Y.shape[0]))
    if rank == X.shape[1] and np.isfinite(Y).any(axis=1).all():
        try:
            sm = _statsmodels_typeII(runs, fac)
            for T in ss:
                ss[T][0] = sm[T]
        except Exception as exc:  # pragma: no cover - statsmodels failure: keep the numpy values
            note += f"; statsmodels failed ({exc}), SS from weighted least squares"
    else:
        note += "; some terms are confounded (design rank-deficient): their SS are the part not shared"
    warnings.warn(f"variance decomposition: {'; '.join(why)}; using Type II sums of squares, shares need "
                  "not add to 1", stacklevel=3)
    tot = ow.ss_total
    S = W.shape[1]
    rows = [_eta_row(GLOBAL, _term_label(T, fac.names), v, tot, "typeII", note, S) for T, v in ss.items()]
    if k >= 3:
        rows.append(_eta_row(GLOBAL, HIGHER, np.maximum(ssr2 - ow.ss_within, 0.0), tot, "typeII",
                             note + "; residual SS of the two-way model minus the within-configuration SS", S))
    rows.append(_eta_row(GLOBAL, RESIDUAL, ow.ss_within, tot, "typeII", note, S))
    return rows, {f: rows[a]["share"] for a, f in enumerate(fac.names)}


def _conditional_rows(runs: Runs, Y: np.ndarray, W: np.ndarray, fac: _Factors,
                      main: dict[str, float]) -> list[dict]:
    """Per level of the most important factor: eta2 shares of what remains, seed sd (and seed
    variance when the level is a single configuration)."""
    if not main:
        return []
    shares = {f: (s if np.isfinite(s) else -np.inf) for f, s in main.items()}
    top = max(shares, key=shares.get)
    a = fac.names.index(top)
    smooth = set(runs.smooth_factors)
    rest = [j for j in range(len(fac.names)) if j != a and fac.names[j] not in smooth]
    if top in smooth:       # a continuous factor: its ranges, not its (one-configuration) values
        bins = cut(runs.first()[top], runs.kinds[top], top)
        top_codes, scopes = np.asarray(bins.codes), list(bins.categories)
    else:
        top_codes, scopes = fac.codes[:, a], [f"{top}={level}" for level in fac.levels[a]]
    rows = []
    for li, scope in enumerate(scopes):
        sel = top_codes == li
        if not sel.any():
            continue
        Ys = Y[sel]
        ow = _oneway(Ys, W)
        single = Ys.shape[0] == 1
        rows += _share_rows(scope, ow, single, n_units=W.shape[1])
        if not single:
            for j in rest:
                codes = fac.codes[sel, j]
                if len(np.unique(codes)) < 2:
                    continue
                ss = _group_ss(ow, codes)
                note = "" if runs.balanced and fac.full_grid else "one-way (marginal) share; design unbalanced"
                rows.append(_eta_row(scope, fac.names[j], ss, ow.ss_total, "eta2", note, W.shape[1]))
        N = ow.n.sum(axis=0)
        var = _safe_div(ow.ss_within, N - ow.groups)
        if single:
            rows.append(_row(scope, "seed variance", var, "variance",
                             "absolute variance of the metric over seeds; " + PCT_CI))
        rows.append(_row(scope, "seed sd", np.sqrt(var), "sd",
                         "absolute sd of the metric, pooled within configurations at this level; " + PCT_CI))
    return rows


def _group_ss(ow: _OneWay, codes: np.ndarray) -> np.ndarray:
    """Between-group SS ``(1 + B,)`` for groups of configurations labelled ``codes (C,)``."""
    n, mean = ow.n, np.where(ow.n > 0, ow.mean, 0.0)
    N = n.sum(axis=0)
    grand = _safe_div((n * mean).sum(axis=0), N)
    out = np.zeros(n.shape[1])
    for g in np.unique(codes):
        ng = n[codes == g].sum(axis=0)
        mg = _safe_div((n[codes == g] * mean[codes == g]).sum(axis=0), ng)
        out += np.where(ng > 0, ng * (np.nan_to_num(mg) - grand) ** 2, 0.0)
    return out


def decompose(runs: Runs, *, n_boot: int = 1000, seed: int = 0, conditional: bool = True) -> pd.DataFrame:
    """The ``variance.csv`` table (see :func:`decompose_fit`)."""
    return decompose_fit(runs, n_boot=n_boot, seed=seed, conditional=conditional)[0]


def decompose_fit(runs: Runs, *, n_boot: int = 1000, seed: int = 0,
                  conditional: bool = True) -> tuple[pd.DataFrame, SurfaceFit | None]:
    """The ``variance.csv`` table: where the variance of ``runs.metric`` comes from.

    Columns ``scope, source, share, ci_low, ci_high, method, note``. Scope "global": observed shares
    (``method="eta2"``: between configurations / seed within configuration, adding to 1), one-way
    random-effects components as shares of their sum plus "reliability (ICC)" (``"component"``),
    and the factorial decomposition (factor main effects, "A × B" interactions, "higher-order
    interactions" with >= 3 factors, "seed (residual)"; ``"eta2"`` when balanced and adding to 1,
    ``"typeII"`` with a warning otherwise); when a factor is continuous (``Runs.smooth_factors``) the
    factorial rows are replaced by the functional ANOVA of a fitted surface (``"fanova"``,
    ``sampled.py``), and the surface is returned with its bootstrap. Scope "seed sources": for a
    crossed or nested seed design (any seed columns, ``sources.py``) each source's shared part and its
    configuration-specific part, the interactions and the residual as shares of the seed variance, or
    one row saying what cannot be separated; scope "seed sources, without the noisiest configurations"
    repeats them when some configuration's seed variance is over ``NOISY_RATIO`` times the median.
    Scopes "factor=level" (``conditional``): the same shares within each level of the most important
    factor (within each of its ranges when it is continuous, ``ranges.cut``), with absolute "seed sd"
    (and "seed variance" when the level is one configuration).

    CIs (95%): bootstrap over seed tuples (``n_boot`` draws, ``np.random.default_rng(seed)``), one draw
    of seed indices applied to every configuration (pigeonhole draws of the source levels in crossed
    designs): eta2 and typeII rows basic on the logit scale, bias-corrected and expanded for S seeds
    (target E[SS_X] / E[SS_total] at this S); global component rows basic around the bootstrap
    population's own components. In crossed and nested designs the global eta2 rows of a balanced grid,
    the component rows and every seed-source row carry generalized intervals of the mixed model instead
    (``GPQ_DRAWS`` pivots, their own generator). sd / variance rows: percentile. Measured coverage:
    ``docs/validation.md``.
    """
    Y = runs.matrix()
    C, S = Y.shape
    rng = np.random.default_rng(seed)
    design = seed_design(runs)
    n_draws = max(int(n_boot), 0) if S >= 2 else 0      # one seed tuple: nothing to resample
    crossed = design.kind == "crossed"
    W = resample.seed_weights(S, n_draws, rng, codes=design.codes if crossed else None,
                              n_levels=design.n_levels if crossed else None)
    fac = _factors(runs)
    ow = _oneway(Y, W)

    boot = "source levels drawn independently (pigeonhole)" if crossed else "seed tuples, paired across configurations"
    if n_draws:
        ci_note = f"{n_draws} bootstrap draws of {boot}"
    else:
        ci_note = "no CI: a single seed tuple" if S < 2 else "no CI (n_boot=0)"
    note0 = f"SS_between / SS_total (includes seed noise); {ci_note}"
    rows = _share_rows(GLOBAL, ow, False, note0, S)
    fit = fit_mixed(Y, design) if design.kind in ("crossed", "nested") else None
    gpq = np.random.default_rng([seed, 7])                # own stream: the bootstrap rows stay as they were
    piv = pivot_draws(fit, GPQ_DRAWS, gpq) if fit is not None and n_draws else None
    mixed = piv is not None and fit.left_out == 0 and fit.n_configs >= 2
    if mixed:
        _mixed_eta_intervals(rows, {BETWEEN: (float(ow.ss_between[0]), C - 1)}, WITHIN, piv, gpq)
    if C >= 2:
        rows += _mixed_component_rows(fit, piv) if mixed else _component_rows(ow, S)
    surface = None
    if runs.smooth_factors and C >= 2:
        frows, main, surface = surface_rows(runs, Y, W, rng, ci_note, replicate=not crossed)
    else:
        frows, main = _factorial_rows(runs, Y, W, ow, fac)
    if mixed and surface is None and runs.balanced and fac.full_grid and frows:
        _mixed_eta_intervals(frows, _fixed_terms(ow, fac), RESIDUAL, piv, gpq)
    rows += frows
    rows += _seed_source_rows(design, fit, piv)
    rows += _robust_source_rows(Y, runs.configs, design, fit, GPQ_DRAWS if n_draws else 0, gpq)
    if conditional:
        rows += _conditional_rows(runs, Y, W, fac, main)
    out = pd.DataFrame(rows, columns=COLUMNS)
    out["note"] = out["note"].fillna("").astype(str)
    return out, surface
