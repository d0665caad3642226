"""Plant knowledge: from per-channel attribution to components, failure modes and an action.

A prediction names the channels that drove it. A planner acts on a component, a failure
mode and a maintenance action, so ``diagnose`` follows the plant description from one to
the other and keeps the evidence of every step. The scoring rule:

1. Channel shares. Every attribution score is clipped at 0. Channels that observe no
   component (ambient inputs, constant channels) and channels the plant does not describe
   carry no evidence and are set aside. The remaining scores are divided by their sum,
   so the shares of the evidence channels sum to 1.
2. Component score: the sum of the shares of the channels that observe the component.
   Component scores therefore sum to 1.
3. Failure mode score: the sum over its indicator channels of share x indicator weight,
   divided by the sum of that value over all failure modes, so the scores of the modes
   with any evidence sum to 1. A mode whose indicators have no share is left out.
4. Recommended action: the first action of the highest-scoring failure mode.

Rankings sort by score, highest first. Equal scores keep the order of the plant
description, so a tie always resolves the same way, and ``Diagnosis.tied_modes`` names
the modes that tie with the first.

The functions here need no torch and change nothing: the same scores and description
always give the same diagnosis.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from models.plant import MaintenanceActionSpec, PlantDescription

__all__ = [
    "ChannelEvidence",
    "ComponentRanking",
    "Diagnosis",
    "FailureModeRanking",
    "LikelyMode",
    "PlantKnowledge",
    "diagnose",
]

# Scores are compared rounded to this many decimals, so that float noise cannot break a tie.
SCORE_DECIMALS = 9


@dataclass(frozen=True, slots=True)
class ChannelEvidence:
    """One channel's part in a score: its share, the indicator weight and their product.

    For a component the weight is 1, because every channel of a component counts fully.
    """

    channel: str
    share: float
    weight: float

    @property
    def contribution(self) -> float:
        return self.share * self.weight


@dataclass(frozen=True, slots=True)
class ComponentRanking:
    component: str
    score: float
    evidence: tuple[ChannelEvidence, ...]  # largest contribution first


@dataclass(frozen=True, slots=True)
class FailureModeRanking:
    component: str
    failure_mode: str
    score: float  # normalised over the modes with evidence
    raw_score: float  # sum of share x weight, before normalisation
    evidence: tuple[ChannelEvidence, ...]  # largest contribution first
    actions: tuple[str, ...]  # the recommended one first

    @property
    def channels(self) -> list[str]:
        return [item.channel for item in self.evidence]


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """Components and failure modes ranked by the evidence, and the action it points to.

    ``channel_shares`` contains the shares of the evidence channels, largest first.
    ``ignored_channels`` lists the channels with a positive score that carry no evidence.
    ``recommended_action`` is None when no failure mode has evidence.
    """

    channel_shares: dict[str, float]
    ignored_channels: tuple[str, ...]
    components: tuple[ComponentRanking, ...]
    failure_modes: tuple[FailureModeRanking, ...]
    recommended_action: MaintenanceActionSpec | None

    @property
    def top_failure_mode(self) -> FailureModeRanking | None:
        return self.failure_modes[0] if self.failure_modes else None

    @property
    def tied_modes(self) -> tuple[str, ...]:
        """Failure modes tied with the first one, which leads only by description order."""
        if not self.failure_modes:
            return ()
        best = self.failure_modes[0].score
        return tuple(
            mode.failure_mode
            for mode in self.failure_modes[1:]
            if _rank_key(mode.score) == _rank_key(best)
        )


@dataclass(frozen=True, slots=True)
class LikelyMode:
    """A failure mode among the top of a ranking, with its evidence channels, largest first."""

    component: str
    failure_mode: str
    score: float
    channels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _IndexedMode:
    component: str
    failure_mode: str
    indicators: tuple[tuple[str, float], ...]  # evidence channels only
    actions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _ModeMatrix:
    """The failure modes' indicator weights for one order of channel columns."""

    columns: list[int]  # the evidence channels' columns among the scores
    weights: np.ndarray  # (E, M): indicator weight of evidence channel e in mode m
    # Per mode, in description order: its indicators' places among the evidence
    # columns and their weights.
    indicators: list[tuple[list[int], np.ndarray]]


class PlantKnowledge:
    """A plant description indexed once for ``diagnose``, which a predictor calls per window."""

    def __init__(self, plant: PlantDescription) -> None:
        self.plant = plant
        self._component_of: dict[str, str] = {
            channel.name: channel.component
            for channel in plant.channels
            if channel.component is not None
        }
        self._component_order = [component.name for component in plant.components]
        self._modes = [
            _IndexedMode(
                component=component.name,
                failure_mode=mode.name,
                indicators=tuple(
                    (channel, weight)
                    for channel, weight in mode.indicators.items()
                    if channel in self._component_of
                ),
                actions=mode.actions,
            )
            for component, mode in plant.failure_modes()
        ]
        self._actions = {action.name: action for action in plant.actions}
        self._matrices: dict[tuple[str, ...], _ModeMatrix] = {}

    @property
    def evidence_channels(self) -> frozenset[str]:
        """Channels that observe a component, the only ones that count as evidence."""
        return frozenset(self._component_of)

    def diagnose(self, channel_scores: Mapping[str, float]) -> Diagnosis:
        """Rank components and failure modes from per-channel attribution scores.

        ``channel_scores`` maps channel names to non-negative attribution, as
        ``Prediction.channel_scores``; it need not sum to 1. See the module docstring
        for the rule.
        """
        shares, ignored = self._shares(channel_scores)
        components = self._rank_components(shares)
        modes = self._rank_modes(shares)

        action = None
        if modes:
            action = self.plant.action(modes[0].actions[0])
        ordered_shares = dict(sorted(shares.items(), key=lambda item: _rank_key(item[1])))
        return Diagnosis(ordered_shares, ignored, components, modes, action)

    def likely_modes(
        self, channel_scores: Mapping[str, float], count: int
    ) -> tuple[tuple[LikelyMode, ...], MaintenanceActionSpec | None]:
        """Return the ``count`` highest-ranked failure modes and the recommended action.

        The ranking and evidence order equal those of ``diagnose``, and the scores agree
        to float rounding, which a test checks. This path builds no ranking of components
        and no evidence of the other modes.
        """
        channels = tuple(channel_scores)
        scores = np.array([[float(channel_scores[name]) for name in channels]])
        return self.likely_modes_batch(channels, scores, count)[0]

    def likely_modes_batch(
        self, channels: Sequence[str], scores: np.ndarray, count: int
    ) -> list[tuple[tuple[LikelyMode, ...], MaintenanceActionSpec | None]]:
        """Rank the failure modes of each row of ``scores`` (B, C), columns in ``channels`` order.

        Returns one ``likely_modes`` result per row. One matrix product gives the shares
        and mode scores of the whole batch, so the predictor can rank every window. Only
        the top ``count`` modes of each row are built.
        """
        channels = tuple(channels)
        matrix = self._mode_matrix(channels)
        columns, indicators = matrix.columns, matrix.indicators
        evidence = np.asarray(scores, dtype=np.float64)[:, columns]  # (B, E)
        evidence = np.where(evidence > 0.0, evidence, 0.0)  # also sets NaN aside
        totals = evidence.sum(axis=1)  # (B,)
        shares = evidence / np.where(totals > 0.0, totals, 1.0)[:, None]  # (B, E)
        raw_scores = shares @ matrix.weights  # (B, M)
        evidence_names = [channels[column] for column in columns]

        # Rank keys as diagnose builds them, rounded so float noise cannot break a tie;
        # a stable sort keeps the description order among equal keys. Modes without
        # evidence sort last and are cut off below.
        has_evidence = raw_scores > 0.0
        mode_totals = np.where(has_evidence, raw_scores, 0.0).sum(axis=1)  # (B,)
        mode_scores = raw_scores / np.where(mode_totals > 0.0, mode_totals, 1.0)[:, None]
        keys = np.where(has_evidence, -np.round(mode_scores, SCORE_DECIMALS), np.inf)
        ranked = np.argsort(keys, axis=1, kind="stable")[:, :count]  # (B, count)
        evidence_counts = has_evidence.sum(axis=1)

        # Each mode's indicator channels, ordered by contribution (share x weight) per row.
        channel_orders = []
        for positions, weights_of_mode in indicators:
            contributions = shares[:, positions] * weights_of_mode  # (B, n)
            contribution_keys = np.where(
                contributions > 0.0, -np.round(contributions, SCORE_DECIMALS), np.inf
            )
            channel_orders.append(
                (np.argsort(contribution_keys, axis=1, kind="stable"), contributions > 0.0)
            )

        results: list[tuple[tuple[LikelyMode, ...], MaintenanceActionSpec | None]] = []
        for row in range(len(evidence)):
            found = int(evidence_counts[row])  # 0 when the row has no evidence at all
            if found == 0:
                results.append(((), None))
                continue
            top = []
            for index in ranked[row, : min(count, found)].tolist():
                positions, _ = indicators[index]
                order, present = channel_orders[index]
                mode = self._modes[index]
                top.append(
                    LikelyMode(
                        component=mode.component,
                        failure_mode=mode.failure_mode,
                        score=float(mode_scores[row, index]),
                        channels=tuple(
                            evidence_names[positions[place]]
                            for place in order[row].tolist()
                            if present[row, place]
                        ),
                    )
                )
            best = self._modes[int(ranked[row, 0])]
            results.append((tuple(top), self._actions[best.actions[0]]))
        return results

    def _mode_matrix(self, channels: tuple[str, ...]) -> _ModeMatrix:
        """Return the indicator weights of the failure modes for ``channels``, built once."""
        cached = self._matrices.get(channels)
        if cached is not None:
            return cached
        columns = [index for index, name in enumerate(channels) if name in self._component_of]
        position = {channels[column]: place for place, column in enumerate(columns)}
        weights = np.zeros((len(columns), len(self._modes)))
        indicators: list[tuple[list[int], np.ndarray]] = []
        for index, mode in enumerate(self._modes):
            places = [position[channel] for channel, _ in mode.indicators if channel in position]
            mode_weights = [weight for channel, weight in mode.indicators if channel in position]
            weights[places, index] = mode_weights
            indicators.append((places, np.array(mode_weights)))
        matrix = _ModeMatrix(columns, weights, indicators)
        self._matrices[channels] = matrix
        return matrix

    def _shares(
        self, channel_scores: Mapping[str, float]
    ) -> tuple[dict[str, float], tuple[str, ...]]:
        evidence: dict[str, float] = {}
        ignored: list[str] = []
        for channel, score in channel_scores.items():
            if not score > 0.0:  # also sets NaN aside
                continue
            if channel in self._component_of:
                evidence[channel] = float(score)
            else:
                ignored.append(channel)

        total = sum(evidence.values())
        if total <= 0.0:
            return {}, tuple(ignored)
        return {channel: score / total for channel, score in evidence.items()}, tuple(ignored)

    def _rank_components(self, shares: Mapping[str, float]) -> tuple[ComponentRanking, ...]:
        evidence: dict[str, list[ChannelEvidence]] = {}
        for channel, share in shares.items():
            evidence.setdefault(self._component_of[channel], []).append(
                ChannelEvidence(channel, share, 1.0)
            )
        rankings = [
            ComponentRanking(
                component=component,
                score=sum(item.share for item in evidence[component]),
                evidence=_largest_first(evidence[component]),
            )
            for component in self._component_order
            if component in evidence
        ]
        return tuple(sorted(rankings, key=lambda ranking: _rank_key(ranking.score)))

    def _rank_modes(self, shares: Mapping[str, float]) -> tuple[FailureModeRanking, ...]:
        scored: list[tuple[_IndexedMode, float, tuple[ChannelEvidence, ...]]] = []
        for mode in self._modes:
            evidence = [
                ChannelEvidence(channel, shares[channel], weight)
                for channel, weight in mode.indicators
                if shares.get(channel, 0.0) > 0.0
            ]
            raw_score = sum(item.contribution for item in evidence)
            if raw_score > 0.0:
                scored.append((mode, raw_score, _largest_first(evidence)))

        total = sum(raw_score for _, raw_score, _ in scored)
        rankings = [
            FailureModeRanking(
                component=mode.component,
                failure_mode=mode.failure_mode,
                score=raw_score / total,
                raw_score=raw_score,
                evidence=evidence,
                actions=mode.actions,
            )
            for mode, raw_score, evidence in scored
        ]
        return tuple(sorted(rankings, key=lambda ranking: _rank_key(ranking.score)))


def diagnose(channel_scores: Mapping[str, float], plant: PlantDescription) -> Diagnosis:
    """Rank components and failure modes of ``plant`` from per-channel attribution scores.

    A shortcut for ``PlantKnowledge(plant).diagnose(channel_scores)``; build a
    ``PlantKnowledge`` once to diagnose many predictions.
    """
    return PlantKnowledge(plant).diagnose(channel_scores)


def _rank_key(score: float) -> float:
    return -round(score, SCORE_DECIMALS)


def _largest_first(evidence: list[ChannelEvidence]) -> tuple[ChannelEvidence, ...]:
    return tuple(sorted(evidence, key=lambda item: _rank_key(item.contribution)))
