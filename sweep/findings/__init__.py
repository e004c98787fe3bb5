"""Plain-language findings: small rules, each ``(analysis) -> Finding | None``, that check the numbers
before they speak (a finding that does not hold for the data is not emitted) and name the figure
that shows it. ``findings(a)`` runs every rule and lists the findings most important first."""
from __future__ import annotations

from . import attribution, configs, failures, surface
from .base import Finding

RULES = [*attribution.RULES, *surface.RULES, *configs.RULES, *failures.RULES]

__all__ = ["Finding", "RULES", "findings"]


def findings(a) -> list[Finding]:
    """Every rule's finding for the analysis ``a``, heaviest first."""
    out = [f for rule in RULES if (f := rule(a)) is not None]
    out.sort(key=lambda x: -x.weight)
    return out
