"""The promotion gate: a challenger replaces the champion only when clearly better."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class PromotionDecision:
    promote: bool
    reason: str


def decide_promotion(
    challenger_rmse: float,
    champion_rmse: float | None,
    champion_version: str | None,
    min_improvement: float,
) -> PromotionDecision:
    """Promote when the challenger's RUL RMSE is at most (1 - min_improvement) x the champion's.

    Both RMSE values come from the same held-out machines. Without a champion any
    challenger with a finite RMSE is promoted.
    """
    if not math.isfinite(challenger_rmse):
        return PromotionDecision(False, f"challenger RMSE is {challenger_rmse}, not a number")
    if champion_version is None or champion_rmse is None:
        return PromotionDecision(
            True, f"no champion yet; challenger RMSE {challenger_rmse:.2f} cycles"
        )

    required = champion_rmse * (1.0 - min_improvement)
    comparison = (
        f"challenger RMSE {challenger_rmse:.2f} cycles vs champion {champion_version} "
        f"{champion_rmse:.2f}; promotion needs at most {required:.2f} "
        f"({min_improvement:.0%} better)"
    )
    if challenger_rmse <= required:
        return PromotionDecision(True, f"better: {comparison}")
    return PromotionDecision(False, f"not better by the margin: {comparison}")
