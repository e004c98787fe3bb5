"""Findings about where the variance comes from: configuration vs seed, the factors and their
interactions, where along the most important factor the seed matters, the seed sources, and the
cross-check with Optuna's importances."""
from __future__ import annotations

import pandas as pd

from ..analysis.ranges import range_words
from .base import Finding
from .words import ci, diff, finite, num, pct, ratio_text, row

TIMES = " × "
FACTORIAL = ("eta2", "typeII")


def global_split(a) -> Finding | None:
    """Configuration vs seed: the observed shares, and the reliability as variance components."""
    v = a.variance
    n_runs, n_seeds, n_cfg = len(a.runs.df), len(a.runs.seeds), len(a.runs.configs)
    between = row(v, scope="global", source="between configurations", method="eta2")
    within = row(v, scope="global", source="seed (within configuration)", method="eta2")
    if between is None or within is None or n_cfg < 2:
        return None
    lead, lead_row, other, other_row = (("the seed", within, "the configuration", between)
                                        if within["share"] > between["share"]
                                        else ("the configuration", between, "the seed", within))
    word = "most" if lead_row["share"] > 0.5 else "the larger part"
    text = (f"Across {n_runs} runs ({n_cfg} configurations × {n_seeds} seeds), {lead} explains {word} of the "
            f"variance in {a.metric}: {pct(lead_row['share'])} ({ci(lead_row['ci_low'], lead_row['ci_high'])}); "
            f"{other} {pct(other_row['share'])} ({ci(other_row['ci_low'], other_row['ci_high'])}) (observed shares).")
    icc = row(v, scope="global", source="reliability (ICC)")
    if icc is not None and finite(icc["share"]):
        text += (f" As variance components, the reliability (share that is not seed) is "
                 f"{num(icc['share'], 2)} ({ci(icc['ci_low'], icc['ci_high'], as_pct=False)}).")
    return Finding(text, "variance_global", "attribution", 10)


def _mains(a) -> pd.DataFrame:
    v = a.variance
    fac = v[(v["scope"] == "global") & v["method"].isin([*FACTORIAL, "fanova"])]
    return fac[fac["source"].isin(a.runs.factors)].sort_values("share", ascending=False)


def factors(a) -> Finding | None:
    """The factors' shares, most important first, and the largest interaction."""
    mains = _mains(a)
    if mains.empty or len(a.runs.configs) < 2:
        return None
    v = a.variance
    fac = v[(v["scope"] == "global") & v["method"].isin([*FACTORIAL, "fanova"])]
    f1 = mains.iloc[0]
    sampled = f1["method"] == "fanova"
    kind = "variance components of a fitted surface" if sampled else "observed shares"
    text = f"{f1['source']} matters most: {pct(f1['share'])} of the variance ({ci(f1['ci_low'], f1['ci_high'])})."
    if len(mains) > 1:
        rest = "; ".join(f"{r['source']} {pct(r['share'])} ({ci(r['ci_low'], r['ci_high'])})"
                         for _, r in mains.iloc[1:].iterrows())
        text += f" The other factors: {rest}."
    inter = fac[fac["source"].str.contains(TIMES, regex=False)].sort_values("share", ascending=False)
    if len(inter) and inter.iloc[0]["share"] >= 0.05 and inter.iloc[0]["ci_low"] > 0:
        i1 = inter.iloc[0]
        text += (f" The {i1['source']} interaction adds {pct(i1['share'])} ({ci(i1['ci_low'], i1['ci_high'])}): "
                 f"the best value of one depends on the other.")
    unexplained = row(fac, source="unexplained by the surface")
    if unexplained is not None and unexplained["share"] >= 0.05:
        text += (f" {pct(unexplained['share'])} of the variance is specific to single configurations (not "
                 f"explained by the factors' smooth effects and pairwise interactions).")
    text += f" ({kind}"
    if (fac["method"] == "typeII").any():
        why = (f"{a.runs.dropped} run{'s' if a.runs.dropped != 1 else ''} without a value of {a.metric}"
               if a.runs.dropped else "configurations with different numbers of runs or missing grid cells")
        text += f"; Type II sums of squares: the design is unbalanced ({why}), shares need not add to 100%"
    text += ".)"
    fig = f"surface_{f1['source']}" if f1["source"] in a.runs.smooth_factors else f"outcome_{f1['source']}"
    return Finding(text, fig, "factor", 9)


def _scope_words(a, scope: str, top: str) -> str:
    return range_words(scope) if top in a.runs.smooth_factors else f"at {scope}"


def where_seed_matters(a) -> Finding | None:
    """Where along the most important factor the seed matters most and least (its levels, or its
    ranges when it is continuous)."""
    if not a.top_factors:
        return None
    top = a.top_factors[0]
    v = a.variance
    cond = v[(v["scope"] != "global") & ~v["scope"].str.startswith("seed sources")]
    sds = cond[cond["source"] == "seed sd"]
    if len(sds) < 2 or not sds["share"].max() > 0:
        return None
    hi, lo = sds.loc[sds["share"].idxmax()], sds.loc[sds["share"].idxmin()]
    if finite(hi["ci_low"]) and finite(lo["ci_high"]) and not hi["ci_low"] > lo["ci_high"]:
        return None          # the seed sd differs no more than its intervals allow: nothing to say
    extra = ""
    sh = cond[(cond["scope"] == hi["scope"]) & (cond["source"] == "seed (within configuration)")]
    several = not (cond[cond["scope"] == hi["scope"]]["source"] == "seed variance").any()
    if len(sh) and several and len(a.runs.factors) > 1 and finite(sh.iloc[0]["share"]):
        extra = f", {pct(sh.iloc[0]['share'])} of the variance among those configurations"
    text = (f"Where the seed matters: most {_scope_words(a, hi['scope'], top)} (seed sd {diff(a, hi['share'])}"
            f"{extra}), least {_scope_words(a, lo['scope'], top)} ({diff(a, lo['share'])}"
            f"{ratio_text(hi['share'], lo['share'])}). A single global share hides this.")
    return Finding(text, f"seed_sd_{top}" if top in a.runs.smooth_factors else f"outcome_{top}", "conditional", 8)


def _source_parts(src: pd.DataFrame) -> dict[str, dict]:
    """Each seed source's shared and configuration-specific rows: {name: {"shared": row, "specific": row}}."""
    parts: dict[str, dict] = {}
    for _, r in src.iterrows():
        label = r["source"]
        if label.startswith(("interactions of", "residual")):
            continue
        if label.endswith(TIMES + "configuration"):
            parts.setdefault(label[: -len(TIMES + "configuration")], {})["specific"] = r
        else:
            parts.setdefault(label.removesuffix(" (shared)"), {})["shared"] = r
    return parts


def _dominant(src: pd.DataFrame) -> tuple[str, str] | None:
    """The largest seed source of these rows and a clause on it: its share, split into shared and
    configuration-specific parts, and which of the two it is."""
    parts = _source_parts(src)
    total = {k: sum(float(r["share"]) for r in p.values()) for k, p in parts.items()}
    if not total:
        return None
    top = max(total, key=total.get)
    p = parts[top]
    text = f"{top} is the largest source, {pct(total[top])}"
    if "specific" in p:
        sh, sp = p.get("shared"), p["specific"]
        shv = float(sh["share"]) if sh is not None else 0.0
        text += (f" (shared by every configuration {pct(shv)}, "
                 f"{ci(sh['ci_low'], sh['ci_high']) if sh is not None else 'no CI'}; configuration-specific "
                 f"{pct(sp['share'])}, {ci(sp['ci_low'], sp['ci_high'])})")
        if shv > 2 * float(sp["share"]):
            text += f": it is shared, the same {top} is hard or easy for every configuration"
        elif float(sp["share"]) > 2 * shv:
            text += ": it matters differently for each configuration"
        else:
            text += ": partly shared, partly configuration-specific"
    else:
        r = p["shared"]
        text += f" ({ci(r['ci_low'], r['ci_high'])}; one configuration cannot tell shared from specific effects)"
    rest = [f"{k} {pct(v)}" for k, v in sorted(total.items(), key=lambda kv: -kv[1]) if k != top]
    resid = src[src["source"].str.startswith("residual")]
    if rest:
        text += ". Then " + ", ".join(rest) + (f"; residual {pct(resid.iloc[0]['share'])}" if len(resid) else "")
    return top, text


def sources(a) -> Finding | None:
    """Which seed source dominates, whether it is shared by every configuration, and whether one
    unstable configuration decides that for all."""
    v = a.variance
    src = v[v["scope"] == "seed sources"]
    if src.empty:
        return None
    if len(src) == 1:
        return Finding(f"Seed sources: {src.iloc[0]['note'].rstrip('.')}.", None, "sources", 2)
    dom = _dominant(src)
    if dom is None:
        return None
    layout = f" ({a.seed_layout})" if getattr(a, "seed_layout", "") else ""
    text = f"Seed sources{layout}, as shares of the seed variance: {dom[1]}."
    robust = v[v["scope"] == "seed sources, without the noisiest configurations"]
    other = _dominant(robust) if len(robust) else None
    if other is not None:
        why = robust.iloc[0]["note"].split(";")[0].removeprefix("without ")
        text += (f" Pooled shares weight each configuration by its seed variance, so one unstable configuration "
                 f"can decide them for all: without {why}, {other[1]}.")
    return Finding(text, "variance_sources", "sources", 6)


def seed_plan(a) -> Finding | None:
    """How many levels of the dominant seed source would pin its share."""
    plan = getattr(a, "seed_plan", None)
    if plan is None or plan.empty:
        return None
    src = a.variance[a.variance["scope"] == "seed sources"]
    parts = _source_parts(src)
    total = {k: sum(float(r["share"]) for r in p.values()) for k, p in parts.items()}
    top = max(total, key=total.get) if total else None
    rows = plan[plan["row"].isin([r["source"] for r in parts.get(top, {}).values()])] if top else plan
    if rows.empty:
        return None
    r = rows.sort_values("halfwidth_now", ascending=False).iloc[0]

    def levels(v) -> str:
        return f"{int(v)}" if finite(v) else "more than 50"

    text = (f"How many seed levels: with {int(r['levels_now'])} levels the interval of {r['row']} is "
            f"±{num(100 * r['halfwidth_now'], 2)} pp wide. Pinning it to ±10 pp would take "
            f"{levels(r['levels_10pp'])} levels of {r['source']} with the other sources as now, or "
            f"{levels(r['levels_10pp_all'])} levels of every source ({levels(r['levels_5pp_all'])} for ±5 pp); "
            "a share is a ratio, so every source's few levels widen it (seed_plan.csv, simulated from the "
            "fitted components).")
    return Finding(text, None, "seed_plan", 4)


def importance(a) -> Finding | None:
    """Optuna's importances on the configuration means, and whether they rank the factors as the
    attribution does."""
    imp, mains = a.importance, _mains(a)
    if imp is None or imp.empty or "importance_mean" not in imp or not imp["importance_mean"].notna().any() \
            or mains.empty:
        return None
    pieces, agree = [], True
    for ev, g in imp.dropna(subset=["importance_mean"]).groupby("evaluator"):
        g = g.sort_values("importance_mean", ascending=False)
        spread = (f" ± {num(g.iloc[0]['importance_sd'], 2)} over {int(g.iloc[0]['repeats'])} evaluations"
                  if finite(g.iloc[0]["importance_sd"]) else ", a single deterministic evaluation")
        pieces.append(f"{ev} ranks {g.iloc[0]['factor']} first ({num(g.iloc[0]['importance_mean'], 2)}{spread})")
        agree &= g.iloc[0]["factor"] == mains.iloc[0]["source"]
    what = "the functional ANOVA of the fitted surface" if mains.iloc[0]["method"] == "fanova" else "the ANOVA"
    text = ("Optuna's importance on configuration means: " + "; ".join(pieces)
            + (f" — the same top factor as {what}." if agree else
               f" — not the top factor of {what}: the importances ignore seed noise, read them with care."))
    return Finding(text, "variance_global", "importance", 3)


RULES = [global_split, factors, where_seed_matters, sources, seed_plan, importance]
__all__ = ["RULES", *[r.__name__ for r in RULES]]
