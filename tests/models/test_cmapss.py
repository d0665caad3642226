from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models import (
    AGE_FIELD,
    CONTEXT_FIELDS,
    SENSOR_CHANNELS,
    SETTING_FIELDS,
    CmapssData,
    HealthThresholds,
    Normaliser,
    cap_rul,
    constant_channels,
    fit_normaliser,
    health_state_labels,
    informative_channels,
    make_windows,
    resolve_cmapss_dir,
    split_engines,
)


def test_load_reads_every_engine_and_row(cmapss: CmapssData) -> None:
    assert len(cmapss.train) == 100
    assert len(cmapss.test) == 100
    assert sum(len(engine) for engine in cmapss.train) == 20631
    assert sum(len(engine) for engine in cmapss.test) == 13096
    assert [engine.unit for engine in cmapss.train] == list(range(1, 101))


def test_load_splits_columns_into_settings_and_sensors(cmapss: CmapssData) -> None:
    first = cmapss.train[0]

    assert len(first) == 192
    assert first.settings.shape == (192, 3)
    assert first.sensors.shape == (192, 21)
    assert first.cycles[0] == 1
    assert first.cycles[-1] == 192
    # Row 1 of train_FD001.txt: setting3 = 100.0, s1 = 518.67, s21 = 23.4190.
    assert first.settings[0, 2] == pytest.approx(100.0)
    assert first.sensors[0, 0] == pytest.approx(518.67)
    assert first.sensors[0, 20] == pytest.approx(23.4190)


def test_training_rul_counts_down_to_zero(cmapss: CmapssData) -> None:
    first = cmapss.train[0]

    assert first.rul[0] == 191
    assert first.rul[-1] == 0
    assert np.all(np.diff(first.rul) == -1)


def test_test_rul_ends_at_published_value(cmapss: CmapssData) -> None:
    first = cmapss.test[0]

    # RUL_FD001.txt gives 112 for test engine 1, which has 31 cycles.
    assert len(first) == 31
    assert first.rul[-1] == 112
    assert first.rul[0] == 142


def test_cap_rul_clips_at_125() -> None:
    capped = cap_rul(np.array([300.0, 126.0, 125.0, 124.0, 0.0]))

    assert capped.tolist() == [125.0, 125.0, 125.0, 124.0, 0.0]


@pytest.mark.parametrize(
    ("rul", "state"),
    [(125, 0), (76, 0), (75, 1), (31, 1), (30, 2), (0, 2)],
)
def test_health_state_labels_at_thresholds(rul: int, state: int) -> None:
    labels = health_state_labels(np.array([rul]), HealthThresholds())

    assert labels.tolist() == [state]


def test_health_thresholds_reject_inverted_limits() -> None:
    with pytest.raises(ValueError, match="critical_max"):
        HealthThresholds(degrading_max=30, critical_max=75)


def test_constant_channels_come_from_training_data(cmapss: CmapssData) -> None:
    assert constant_channels(cmapss.train) == ("s1", "s5", "s10", "s16", "s18", "s19")
    assert informative_channels(cmapss.train) == (
        "s2",
        "s3",
        "s4",
        "s6",
        "s7",
        "s8",
        "s9",
        "s11",
        "s12",
        "s13",
        "s14",
        "s15",
        "s17",
        "s20",
        "s21",
    )


def test_resolve_cmapss_dir_accepts_root_and_folder(data_dir: Path) -> None:
    assert resolve_cmapss_dir(data_dir) == data_dir / "cmapss"
    assert resolve_cmapss_dir(data_dir / "cmapss") == data_dir / "cmapss"


def test_resolve_cmapss_dir_names_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"train_FD001\.txt"):
        resolve_cmapss_dir(tmp_path)


def test_split_engines_is_disjoint_and_complete(cmapss: CmapssData) -> None:
    train, validation = split_engines(cmapss.train, validation_fraction=0.2, seed=7)
    train_units = {engine.unit for engine in train}
    validation_units = {engine.unit for engine in validation}

    assert len(validation) == 20
    assert len(train) == 80
    assert train_units.isdisjoint(validation_units)
    assert train_units | validation_units == set(range(1, 101))


def test_split_engines_is_reproducible_per_seed(cmapss: CmapssData) -> None:
    def validation_units(seed: int) -> list[int]:
        return [engine.unit for engine in split_engines(cmapss.train, 0.2, seed)[1]]

    assert validation_units(3) == validation_units(3)
    assert validation_units(3) != validation_units(4)


def test_split_engines_keeps_one_engine_each_side(cmapss: CmapssData) -> None:
    train, validation = split_engines(cmapss.train[:2], validation_fraction=0.01, seed=0)

    assert len(train) == 1
    assert len(validation) == 1


def test_normaliser_standardises_training_rows(cmapss: CmapssData) -> None:
    channels = informative_channels(cmapss.train)
    normaliser = fit_normaliser(cmapss.train, channels, SETTING_FIELDS)
    columns = [SENSOR_CHANNELS.index(name) for name in channels]
    rows = np.concatenate([engine.sensors[:, columns] for engine in cmapss.train])

    standardised = normaliser.transform(rows, channels)

    np.testing.assert_allclose(standardised.mean(axis=0), 0.0, atol=1e-3)
    np.testing.assert_allclose(standardised.std(axis=0), 1.0, atol=1e-3)


def test_normaliser_centres_constant_column(cmapss: CmapssData) -> None:
    normaliser = fit_normaliser(cmapss.train, ("s2",), SETTING_FIELDS)
    mean, std = normaliser.statistics(("setting3",))

    assert mean.tolist() == [pytest.approx(100.0)]
    assert std.tolist() == [1.0]
    assert normaliser.transform(np.array([[100.0]]), ("setting3",)).tolist() == [[0.0]]


def test_normaliser_round_trips_through_json(cmapss: CmapssData) -> None:
    normaliser = fit_normaliser(cmapss.train[:5], ("s2", "s3"), SETTING_FIELDS)

    restored = Normaliser.from_dict(json.loads(json.dumps(normaliser.to_dict())))

    assert restored == normaliser


def test_normaliser_changes_when_test_rows_added(cmapss: CmapssData) -> None:
    channels = informative_channels(cmapss.train)
    train_only = fit_normaliser(cmapss.train, channels, SETTING_FIELDS)
    with_test = fit_normaliser([*cmapss.train, *cmapss.test], channels, SETTING_FIELDS)

    train_mean, train_std = train_only.statistics(channels)
    leaked_mean, leaked_std = with_test.statistics(channels)

    # Test engines stop before failure, so their sensors sit nearer the healthy baseline.
    assert not np.allclose(train_mean, leaked_mean, rtol=0, atol=1e-4)
    assert not np.allclose(train_std, leaked_std, rtol=1e-3)


def test_normaliser_rejects_unknown_names(cmapss: CmapssData) -> None:
    normaliser = fit_normaliser(cmapss.train[:3], ("s2",), SETTING_FIELDS)

    with pytest.raises(KeyError, match="s4"):
        normaliser.statistics(("s4",))


def test_make_windows_shapes_and_targets(cmapss: CmapssData) -> None:
    first = cmapss.train[0]
    channels = ("s2", "s3", "s4")
    normaliser = fit_normaliser([first], channels, SETTING_FIELDS)

    windows = make_windows(
        [first],
        channels=channels,
        context_fields=SETTING_FIELDS,
        normaliser=normaliser,
        window=30,
    )

    # 192 cycles give 192 - 30 + 1 windows; the first ends at cycle 30 with RUL 162.
    assert windows.sensors.shape == (163, 30, 3)
    assert windows.context.shape == (163, 3)
    assert windows.rul[0] == 125
    assert windows.rul[-1] == 0
    assert windows.state[-1] == 2
    assert set(windows.unit.tolist()) == {1}
    expected_last = normaliser.transform(first.sensors[-30:, 1:4], channels)
    np.testing.assert_allclose(windows.sensors[-1], expected_last, rtol=1e-6)
    expected_context = normaliser.transform(first.settings[-30:], SETTING_FIELDS).mean(axis=0)
    np.testing.assert_allclose(windows.context[-1], expected_context, rtol=1e-5, atol=1e-6)


def test_min_history_pads_early_windows(cmapss: CmapssData) -> None:
    first = cmapss.train[0]
    normaliser = fit_normaliser([first], ("s2",), CONTEXT_FIELDS)
    options = {
        "channels": ("s2",),
        "context_fields": CONTEXT_FIELDS,
        "normaliser": normaliser,
        "window": 30,
    }

    plain = make_windows([first], **options)  # type: ignore[arg-type]
    early = make_windows([first], min_history=5, **options)  # type: ignore[arg-type]

    # 192 cycles: windows end at cycles 30..192 without, 5..192 with min_history 5.
    assert (len(plain), len(early)) == (163, 188)
    np.testing.assert_array_equal(early.sensors[-len(plain) :], plain.sensors)
    scaled = normaliser.transform(first.sensors[:5, [1]], ("s2",))  # (5, 1)
    np.testing.assert_allclose(early.sensors[0, :25], np.repeat(scaled[:1], 25, axis=0))
    np.testing.assert_allclose(early.sensors[0, 25:], scaled)
    assert early.rul[0] == min(first.rul[4], 125)


def test_make_windows_stride_keeps_last_cycle(cmapss: CmapssData) -> None:
    first = cmapss.train[0]
    normaliser = fit_normaliser([first], ("s2",), SETTING_FIELDS)

    windows = make_windows(
        [first],
        channels=("s2",),
        context_fields=SETTING_FIELDS,
        normaliser=normaliser,
        window=30,
        stride=5,
    )

    # Window ends at cycle indices 191, 186, ..., 31: 33 windows.
    assert len(windows) == 33
    assert windows.rul[-1] == 0
    assert windows.rul[-2] == 5


def test_make_windows_last_only_gives_one_per_engine(cmapss: CmapssData) -> None:
    normaliser = fit_normaliser(cmapss.train, ("s2",), SETTING_FIELDS)

    windows = make_windows(
        cmapss.test,
        channels=("s2",),
        context_fields=SETTING_FIELDS,
        normaliser=normaliser,
        window=30,
        last_only=True,
    )

    assert len(windows) == 100
    assert windows.rul[0] == 112
    assert windows.rul.max() == 125


def test_make_windows_pads_short_engine_with_first_row(cmapss: CmapssData) -> None:
    short = cmapss.test[0]  # 31 cycles
    normaliser = fit_normaliser(cmapss.train, ("s2",), SETTING_FIELDS)

    windows = make_windows(
        [short],
        channels=("s2",),
        context_fields=SETTING_FIELDS,
        normaliser=normaliser,
        window=40,
        last_only=True,
    )

    first_row = normaliser.transform(short.sensors[:1, 1:2], ("s2",))
    assert windows.sensors.shape == (1, 40, 1)
    np.testing.assert_array_equal(windows.sensors[0, :10], np.repeat(first_row, 10, axis=0))
    assert windows.rul[0] == 112


def test_engine_context_ends_with_the_cycle_number(cmapss: CmapssData) -> None:
    engine = cmapss.train[0]

    assert (*SETTING_FIELDS, AGE_FIELD) == CONTEXT_FIELDS
    assert engine.context.shape == (len(engine), len(CONTEXT_FIELDS))
    np.testing.assert_array_equal(engine.context[:, :3], engine.settings)
    np.testing.assert_array_equal(engine.context[:, 3], engine.cycles.astype(np.float32))
