from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from ingest.privacy import PseudonymKeyError
from plantpulse.settings import SettingsError, load_pseudonym_key, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLANTPULSE_CONFIG", raising=False)
    monkeypatch.delenv("PLANTPULSE_KAFKA__BOOTSTRAP_SERVERS", raising=False)


def test_defaults_are_embedded() -> None:
    settings = load_settings()

    assert settings.embedded_broker is True
    assert settings.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert settings.kafka.session_timeout_ms == 6000
    assert settings.scheduler.time_limit_s == 10.0
    assert settings.predictor.precision == "float32"


def test_environment_overrides_toml_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "plantpulse.toml"
    config.write_text(
        'embedded_broker = false\n[kafka]\nbootstrap_servers = "kafka-1:9092"\npartitions = 12\n'
        "[scheduler]\ntime_limit_s = 30\n[predictor]\nprecision = 'bfloat16'\n"
    )
    monkeypatch.setenv("PLANTPULSE_KAFKA__BOOTSTRAP_SERVERS", "kafka-2:9093")

    settings = load_settings(config)

    assert settings.embedded_broker is False
    assert settings.kafka.bootstrap_servers == "kafka-2:9093"
    assert settings.kafka.partitions == 12
    assert settings.scheduler.time_limit_s == 30
    assert settings.predictor.precision == "bfloat16"


def test_missing_settings_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"absent\.toml"):
        load_settings(tmp_path / "absent.toml")


def test_unknown_setting_is_rejected(tmp_path: Path) -> None:
    config = tmp_path / "plantpulse.toml"
    config.write_text("regsitry_dir = '/tmp/x'\n")

    with pytest.raises(SettingsError, match="regsitry_dir") as caught:
        load_settings(config)

    assert str(config) in str(caught.value)


def test_unknown_nested_setting_is_rejected(tmp_path: Path) -> None:
    config = tmp_path / "plantpulse.toml"
    config.write_text("[scheduler]\ntime_limit = 5\n")

    with pytest.raises(SettingsError, match=r"scheduler\.time_limit"):
        load_settings(config)


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    config = tmp_path / "broken.toml"
    config.write_text("embedded_broker = \n")

    with pytest.raises(SettingsError, match=r"broken\.toml"):
        load_settings(config)


def test_loading_settings_leaves_environment_alone(tmp_path: Path) -> None:
    config = tmp_path / "plantpulse.toml"
    config.write_text("[kafka]\nbootstrap_servers = 'kafka-1:9092'\n")

    first = load_settings(config)
    second = load_settings()

    assert first.kafka.bootstrap_servers == "kafka-1:9092"
    assert second.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert "PLANTPULSE_CONFIG" not in os.environ


def test_sasl_password_is_secret_and_reaches_client_options() -> None:
    settings = load_settings(
        kafka={
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "PLAIN",
            "sasl_username": "u",
            "sasl_password": "s3cret",
        }
    )

    options = settings.kafka.producer_options()

    assert "s3cret" not in repr(settings)
    assert options["sasl_plain_password"] == "s3cret"
    assert options["security_protocol"] == "SASL_SSL"


PSEUDONYM_KEY = "a-pseudonym-key-of-forty-characters-long"


def test_pseudonym_key_is_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANTPULSE_PRIVACY__PSEUDONYM_KEY", PSEUDONYM_KEY)

    settings = load_settings()

    assert PSEUDONYM_KEY not in repr(settings)
    assert PSEUDONYM_KEY not in str(settings.privacy)
    assert PSEUDONYM_KEY not in settings.model_dump_json()
    assert load_pseudonym_key(settings) == PSEUDONYM_KEY.encode()


def test_short_pseudonym_key_is_rejected() -> None:
    settings = load_settings(privacy={"pseudonym_key": "too-short"})

    with pytest.raises(
        PseudonymKeyError, match=r"privacy\.pseudonym_key has 9 characters\. Use at least 32"
    ):
        load_pseudonym_key(settings)


def test_unset_key_is_created_in_state_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    monkeypatch.delenv("PLANTPULSE_PRIVACY__PSEUDONYM_KEY", raising=False)
    monkeypatch.delenv("PLANTPULSE_PRIVACY__KEY_FILE", raising=False)

    first = load_pseudonym_key(load_settings())
    second = load_pseudonym_key(load_settings())

    key_file = tmp_path / "plantpulse" / "pseudonym.key"
    assert first == second
    assert key_file.read_text().strip().encode() == first
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_unwritable_key_file_names_the_fix(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    settings = load_settings(privacy={"key_file": blocker / "pseudonym.key"})

    with pytest.raises(PseudonymKeyError) as caught:
        load_pseudonym_key(settings)

    assert f"cannot read or create the pseudonym key file {blocker / 'pseudonym.key'}" in str(
        caught.value
    )
    assert "privacy.pseudonym_key" in str(caught.value)
