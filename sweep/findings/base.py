"""A finding: one plain-language statement, the figure that shows it, and how important it is."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Finding:
    """``text``: the sentence(s); ``figure``: the key of the figure that shows it (or None);
    ``kind``: which rule made it; ``weight``: importance (findings are listed heaviest first)."""

    text: str
    figure: str | None
    kind: str
    weight: float = 0.0
