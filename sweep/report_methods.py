"""The report's Methods section: what every number and interval is, stated once, in prose that can go
into a paper's appendix. Only the paragraphs that apply to this analysis are written, each from its
facts (numbers of runs, seeds, draws); definitions follow ``../shared/STATISTICS.md``."""
from __future__ import annotations

from .report_tables import variance_notes

__all__ = ["methods", "REFERENCES"]

REFERENCES = [
    "Burdick, R. K. and Graybill, F. A. (1992). Confidence Intervals on Variance Components. Marcel Dekker.",
    "Dodge, J. et al. (2019). Show Your Work: Improved Reporting of Experimental Results. EMNLP.",
    "Efron, B. (1987). Better bootstrap confidence intervals. JASA 82, 171-185.",
    "Hesterberg, T. (2015). What teachers should know about the bootstrap. The American Statistician 69.",
    "Hutter, F., Hoos, H. and Leyton-Brown, K. (2014). An Efficient Approach for Assessing Hyperparameter "
    "Importance. ICML.",
    "Montgomery, D. C. Design and Analysis of Experiments (random-effects models).",
    "Owen, A. B. (2007). The pigeonhole bootstrap. Annals of Applied Statistics 1, 386-411.",
    "Weerahandi, S. (1993). Generalized confidence intervals. JASA 88, 899-905.",
    "Wood, S. N. (2017). Generalized Additive Models: An Introduction with R, 2nd ed. CRC.",
]


def _design(a) -> str:
    r = a.runs
    n, c = len(r.df), len(r.configs)
    seeds = ", ".join(map(r.original, r.seed_cols)) or "row order within a configuration"
    text = (f"The analysis uses {n} runs of {c} configuration{'s' if c != 1 else ''} (factors: "
            f"{', '.join(map(r.original, r.factors)) or 'none'}); the outcome is {r.original(a.metric)}, "
            f"{'higher' if a.higher_is_better else 'lower'} is better. Seeds are identified by {seeds}"
            f"{f' ({a.seed_layout})' if a.seed_layout else ''}.")
    if r.renamed:
        text += (" Column(s) " + ", ".join(f"{u} (shown as {h})" for u, h in r.renamed.items())
                 + " were renamed in the tables and figures: sweep uses those names internally.")
    if r.dropped:
        text += (f" {r.dropped} runs have no value of {a.metric} (diverged with undefined weights) and are "
                 "excluded, so the design is unbalanced.")
    return text


def _uncertainty(a) -> str:
    return ("Unless a row says otherwise, 95% confidence intervals come from a bootstrap over seeds with "
            "1000 draws from a fixed generator seed (the report is reproducible): each draw picks seed "
            "tuples once and applies them to every configuration, keeping the pairing of common random "
            "numbers (Owen 2007's pigeonhole bootstrap where seed sources are crossed). Means and paired "
            "differences use percentile intervals; observed variance shares use a basic (pivotal) bootstrap "
            "on the logit scale, bias-corrected and expanded for few seeds (Hesterberg 2015). Every interval "
            "type was checked by simulation with known truth for 93-97% coverage (make validate; "
            "docs/validation.md, docs/validation_sources.md), and where it falls outside that band the "
            "documents say so.")


def _variance(a) -> str:
    text = ("Variance shares are of two kinds. An observed share (eta2) is a source's sum of squares over "
            "the total; it adds up to one, but the between-configuration part also contains seed noise. A "
            "variance component is the variance the source would contribute in the population, estimated from "
            "expected mean squares (Montgomery) and truncated at 0; the reliability is the configurations' "
            "component over configurations plus seed. On a balanced grid, factors and their two-way "
            "interactions are exact sums of squares, with everything higher in one row; unbalanced tables "
            "use Type II sums of squares, which need not add up to one.")
    if a.sampled:
        text += (" Because a factor here is continuous (each configuration has its own value), the "
                 "between-configuration variance is decomposed by a functional ANOVA (Hutter et al. 2014) "
                 "of a fitted surface: penalised-spline main effects on the sampling scale, categorical "
                 "effects and pairwise interactions, smoothing chosen by REML (Wood 2017); what the surface "
                 "does not explain of the configuration means is its own row. Its intervals resample "
                 "configurations and seeds together (BCa, Efron 1987); a term the Wald test cannot tell "
                 "from zero gets a lower end of 0.")
    return text


def _sources(a) -> str:
    if a.seed_layout.startswith(("crossed", "nested")):
        return ("Seed sources are modelled as a mixed model: configurations fixed, each seed source random "
                "and crossed with the configurations, so that a source has a part shared by every "
                "configuration (its main effect: the same split is hard for all) and a "
                "configuration-specific part (configuration × source). Shares are of the seed variance, "
                "with generalized confidence intervals from the pivots of the mean squares (Weerahandi "
                "1993; Burdick and Graybill 1992), which hold their level with few levels of a source and "
                "are wide there. The planner simulates studies from the fitted components to say how many "
                "levels of each source would narrow them.")
    if a.seed_layout.startswith("replicate"):
        return ("The seed columns change together (a replicate design), so their effects cannot be separated: "
                "the seed row is all of them together. A crossed design (init × order × split) would separate them.")
    return ""


def _comparisons(a) -> str:
    return ("Configurations are compared on their common seeds: the mean paired difference with a bootstrap "
            "interval, the Wilcoxon signed-rank p-value, and the probability that one beats the other on a "
            "seed (ties count half). The seeds needed to tell two configurations apart at alpha 0.05 with 80% "
            "power are ((1.96 + 0.84) sd(d) / |mean(d)|)^2. The evaluation noise floor of an accuracy p "
            "measured on n examples is sqrt(p(1 - p)/n).")


def _failures(a) -> str:
    return ("Failure modes come from each run's training diagnostics: stagnated (the training loss stopped "
            "changing by more than its relative tolerance), frozen (from some step on the training loss is "
            "exactly the same float to the end: what a printed cost shows as stagnant), diverged (non-finite loss), saturated or dead units, "
            "single-class predictions (a seed sd of 0 is then not robustness), no better than the untrained "
            "network, and bimodal outcomes (sorted outcomes split by a gap larger than three times the larger "
            "group's sd and the evaluation noise floor).")


def _extras(a) -> str:
    parts = []
    if len(a.importance):
        parts.append("Optuna's hyperparameter importances (fANOVA, Hutter et al. 2014; PED-ANOVA) on the "
                     "configuration means are a cross-check of the ranking, not part of the attribution.")
    if a.budget is not None and len(a.budget):
        parts.append("The expected best value against the number of trials follows Dodge et al. (2019).")
    if a.confirm is not None and len(a.confirm):
        parts.append("The best of many configurations is optimistic (selection bias): the top ones were "
                     "re-run on fresh seeds (sweep confirm).")
    return " ".join(parts)


def methods(a) -> dict:
    """``{"paragraphs": [(heading, text)], "notes": [variance-row notes, numbered as in the table],
    "references": [...]}`` for the analysis ``a``."""
    paragraphs = [("Design", _design(a)), ("Intervals", _uncertainty(a)), ("Variance shares", _variance(a)),
                  ("Seed sources", _sources(a)), ("Comparisons", _comparisons(a)),
                  ("Failure modes", _failures(a)), ("Cross-checks", _extras(a))]
    return {"paragraphs": [(h, t) for h, t in paragraphs if t], "notes": variance_notes(a.variance),
            "references": REFERENCES}
