"""Plant knowledge: rankings of components, failure modes and actions on known cases."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from models import PlantKnowledge, diagnose
from models.plant import PlantDescription, example_plant


@pytest.fixture(scope="module")
def cmapss() -> PlantDescription:
    return example_plant("cmapss")


@pytest.fixture(scope="module")
def ai4i() -> PlantDescription:
    return example_plant("ai4i")


def test_hpc_channels_point_to_hpc_overhaul(cmapss: PlantDescription) -> None:
    diagnosis = diagnose({"s3": 0.2, "s7": 0.2, "s11": 0.2}, cmapss)

    assert [c.component for c in diagnosis.components] == ["hpc"]
    assert diagnosis.components[0].score == pytest.approx(1.0)
    [mode] = diagnosis.failure_modes
    assert (mode.component, mode.failure_mode) == ("hpc", "hpc-degradation")
    assert mode.score == pytest.approx(1.0)
    assert mode.raw_score == pytest.approx(1.0)
    assert mode.actions == ("hpc-overhaul", "compressor-water-wash")
    assert sorted(mode.channels) == ["s11", "s3", "s7"]
    for item in mode.evidence:
        assert item.share == pytest.approx(1 / 3)
        assert item.weight == 1.0
    action = diagnosis.recommended_action
    assert action is not None
    assert action.name == "hpc-overhaul"
    assert action.duration_minutes == 480
    assert action.crew_size == 2
    assert action.skill == "engine-mechanic"
    assert action.spare_parts == ("hpc blade set", "hpc seal kit")


def test_shares_split_over_components_and_modes(cmapss: PlantDescription) -> None:
    diagnosis = diagnose({"s3": 0.5, "s4": 0.3, "s21": 0.2}, cmapss)

    assert diagnosis.channel_shares == pytest.approx({"s3": 0.5, "s4": 0.3, "s21": 0.2})
    # The components tie, so hpc comes first as in the description; the indicator
    # weights then separate the failure modes.
    assert [(c.component, round(c.score, 6)) for c in diagnosis.components] == [
        ("hpc", 0.5),
        ("lpt", 0.5),
    ]
    # hpc-degradation: 0.5 x 1.0; lpt-degradation: 0.3 x 1.0 + 0.2 x 0.8 = 0.46.
    modes = {m.failure_mode: m for m in diagnosis.failure_modes}
    assert modes["hpc-degradation"].raw_score == pytest.approx(0.5)
    assert modes["lpt-degradation"].raw_score == pytest.approx(0.46)
    assert modes["hpc-degradation"].score == pytest.approx(0.5 / 0.96)
    assert modes["lpt-degradation"].score == pytest.approx(0.46 / 0.96)
    assert [m.failure_mode for m in diagnosis.failure_modes] == [
        "hpc-degradation",
        "lpt-degradation",
    ]
    assert sum(m.score for m in diagnosis.failure_modes) == pytest.approx(1.0)
    assert [e.channel for e in modes["lpt-degradation"].evidence] == ["s4", "s21"]
    assert modes["lpt-degradation"].evidence[1].weight == 0.8
    assert diagnosis.recommended_action is not None
    assert diagnosis.recommended_action.name == "hpc-overhaul"


def test_indicator_weight_scales_evidence(cmapss: PlantDescription) -> None:
    diagnosis = diagnose({"s9": 1.0}, cmapss)

    [mode] = diagnosis.failure_modes
    assert mode.failure_mode == "hpc-degradation"
    assert mode.raw_score == pytest.approx(0.7)
    assert mode.score == pytest.approx(1.0)


def test_tie_follows_description_order(cmapss: PlantDescription) -> None:
    forward = diagnose({"s2": 0.4, "s12": 0.4}, cmapss)
    backward = diagnose({"s12": 0.4, "s2": 0.4}, cmapss)

    for diagnosis in (forward, backward):
        assert [m.failure_mode for m in diagnosis.failure_modes] == [
            "lpc-degradation",
            "fuel-flow-deviation",
        ]
        assert [m.score for m in diagnosis.failure_modes] == pytest.approx([0.5, 0.5])
        assert diagnosis.tied_modes == ("fuel-flow-deviation",)
        assert diagnosis.recommended_action is not None
        assert diagnosis.recommended_action.name == "compressor-water-wash"


def test_no_tie_reported_for_clear_winner(cmapss: PlantDescription) -> None:
    diagnosis = diagnose({"s2": 0.6, "s12": 0.4}, cmapss)

    assert diagnosis.tied_modes == ()


def test_channels_without_component_carry_no_evidence(cmapss: PlantDescription) -> None:
    with_ambient = diagnose({"s1": 10.0, "s5": 3.0, "s3": 1.0, "s4": 1.0}, cmapss)
    without = diagnose({"s3": 1.0, "s4": 1.0}, cmapss)

    assert with_ambient.ignored_channels == ("s1", "s5")
    assert with_ambient.channel_shares == pytest.approx({"s3": 0.5, "s4": 0.5})
    assert with_ambient.components == without.components
    assert with_ambient.failure_modes == without.failure_modes


def test_only_ambient_channels_give_no_cause(cmapss: PlantDescription) -> None:
    diagnosis = diagnose({"s1": 0.5, "s10": 0.3, "s16": 0.2}, cmapss)

    assert diagnosis.channel_shares == {}
    assert diagnosis.components == ()
    assert diagnosis.failure_modes == ()
    assert diagnosis.recommended_action is None
    assert diagnosis.top_failure_mode is None
    assert diagnosis.tied_modes == ()
    assert diagnosis.ignored_channels == ("s1", "s10", "s16")


def test_unknown_negative_and_nan_scores_ignored(cmapss: PlantDescription) -> None:
    diagnosis = diagnose({"s3": 1.0, "vibration": 4.0, "s4": -2.0, "s7": math.nan}, cmapss)

    assert diagnosis.channel_shares == {"s3": 1.0}
    assert diagnosis.ignored_channels == ("vibration",)
    assert [m.failure_mode for m in diagnosis.failure_modes] == ["hpc-degradation"]


def test_empty_and_zero_scores_give_no_cause(cmapss: PlantDescription) -> None:
    for scores in ({}, {"s3": 0.0, "s4": 0.0}):
        diagnosis = diagnose(scores, cmapss)
        assert diagnosis.failure_modes == ()
        assert diagnosis.recommended_action is None


def test_scale_of_scores_does_not_matter(cmapss: PlantDescription) -> None:
    shares = {"s3": 0.5, "s8": 0.3, "s17": 0.2}
    raw = {channel: 37.0 * share for channel, share in shares.items()}

    assert diagnose(raw, cmapss) == diagnose(shares, cmapss)


def test_tool_wear_points_to_tool_change(ai4i: PlantDescription) -> None:
    diagnosis = diagnose({"tool_wear": 0.8}, ai4i)

    assert [c.component for c in diagnosis.components] == ["tool"]
    # tool-wear-failure weighs tool_wear 1.0, overstrain-failure 0.7.
    assert [(m.failure_mode, round(m.score, 6)) for m in diagnosis.failure_modes] == [
        ("tool-wear-failure", round(1.0 / 1.7, 6)),
        ("overstrain-failure", round(0.7 / 1.7, 6)),
    ]
    action = diagnosis.recommended_action
    assert action is not None
    assert action.name == "tool-change"
    assert action.duration_minutes == 30
    assert action.skill == "machine-setter"
    assert action.spare_parts == ("cutting tool",)


def test_indicator_of_another_component_counts(ai4i: PlantDescription) -> None:
    # rotational_speed observes the spindle but also indicates heat dissipation failure.
    diagnosis = diagnose({"rotational_speed": 1.0}, ai4i)

    assert [c.component for c in diagnosis.components] == ["spindle"]
    assert [(m.component, m.failure_mode) for m in diagnosis.failure_modes] == [
        ("spindle", "power-failure"),
        ("cooling", "heat-dissipation-failure"),
    ]
    assert [m.raw_score for m in diagnosis.failure_modes] == pytest.approx([1.0, 0.5])
    assert diagnosis.recommended_action is not None
    assert diagnosis.recommended_action.name == "drive-inspection"


def test_mode_without_indicators_never_ranked(ai4i: PlantDescription) -> None:
    every_channel = {channel: 1.0 for channel in ai4i.channel_names}

    modes = [m.failure_mode for m in diagnose(every_channel, ai4i).failure_modes]

    assert "random-failure" not in modes
    assert len(modes) == 4


def test_prepared_knowledge_matches_shortcut(cmapss: PlantDescription) -> None:
    knowledge = PlantKnowledge(cmapss)
    scores = {"s11": 0.4, "s15": 0.35, "s20": 0.25}

    assert knowledge.diagnose(scores) == diagnose(scores, cmapss)
    assert knowledge.evidence_channels == {
        c.name for c in cmapss.channels if c.component is not None
    }


@pytest.mark.parametrize("plant_name", ["cmapss", "ai4i"])
def test_likely_modes_match_full_diagnosis(plant_name: str) -> None:
    plant = example_plant(plant_name)  # type: ignore[arg-type]
    knowledge = PlantKnowledge(plant)
    rng = random.Random(7)
    levels = [0.0, 0.25, 1e-3, math.nan]

    for _ in range(300):
        scores = {
            channel: rng.choice([*levels, rng.random(), rng.random()])
            for channel in plant.channel_names
        }
        full = knowledge.diagnose(scores)
        top, action = knowledge.likely_modes(scores, 3)

        expected = [
            (mode.component, mode.failure_mode, tuple(mode.channels))
            for mode in full.failure_modes[:3]
        ]
        assert [(m.component, m.failure_mode, m.channels) for m in top] == expected
        assert [m.score for m in top] == pytest.approx(
            [mode.score for mode in full.failure_modes[:3]], rel=1e-12
        )
        assert action == full.recommended_action


def test_likely_modes_batch_ranks_rows_apart() -> None:
    knowledge = PlantKnowledge(example_plant("cmapss"))
    channels = ("s2", "s3", "s7", "s11", "s15", "s20")
    rows = [
        {"s11": 0.7, "s7": 0.3},
        {"s2": 0.0, "s3": 0.0},
        {"s20": 0.6, "s15": 0.4},
    ]
    scores = np.array([[row.get(name, 0.0) for name in channels] for row in rows])

    batch = knowledge.likely_modes_batch(channels, scores, 3)

    assert len(batch) == 3
    assert batch[1] == ((), None)
    hpc_modes, hpc_action = batch[0]
    assert [(m.failure_mode, m.channels) for m in hpc_modes] == [("hpc-degradation", ("s11", "s7"))]
    assert hpc_action is not None
    assert hpc_action.name == "hpc-overhaul"
    hot_modes, _ = batch[2]
    assert [m.failure_mode for m in hot_modes] == ["hpt-degradation", "fan-degradation"]
    for row, (top, action) in zip(rows, batch, strict=True):
        alone, alone_action = knowledge.likely_modes(row, 3)
        assert [(m.failure_mode, m.channels) for m in top] == [
            (m.failure_mode, m.channels) for m in alone
        ]
        assert action == alone_action
