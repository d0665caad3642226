"""Pseudonymisation of personal context fields: pseudonyms, events, dead letters, the key file."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest.events import DeadLetter, Event, OperationStarted, SensorReading
from ingest.history import OPERATION_EVENT, points_from_event
from ingest.privacy import (
    PSEUDONYM_PATTERN,
    Pseudonymiser,
    PseudonymKeyError,
    check_key,
    load_or_create_key,
)
from ingest.stream import DeadLetterSink

KEY = b"0123456789abcdef0123456789abcdef"
TS = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def pseudonymiser(key: bytes = KEY) -> Pseudonymiser:
    return Pseudonymiser(key, {"operator_id", "inspector"})


def reading(context: dict[str, object]) -> SensorReading:
    return SensorReading(
        machine_id="mill-01", ts=TS, seq=7, channels={"torque": 40.5}, context=context
    )


def test_pseudonym_is_truncated_hmac_sha256() -> None:
    expected = hmac.new(KEY, b"Ada Lovelace", hashlib.sha256).hexdigest()[:32]

    assert pseudonymiser().pseudonym("Ada Lovelace") == f"psn:{expected}"


def test_pseudonym_depends_on_key() -> None:
    first = pseudonymiser().pseudonym("Ada Lovelace")
    second = pseudonymiser(b"another key of at least 32 chars!").pseudonym("Ada Lovelace")

    assert PSEUDONYM_PATTERN.match(first)
    assert PSEUDONYM_PATTERN.match(second)
    assert first != second
    assert pseudonymiser().pseudonym("Ada Lovelace") == first
    assert pseudonymiser().pseudonym("Grace Hopper") != first


def test_pseudonym_of_number_matches_its_text() -> None:
    subject = pseudonymiser()

    assert subject.pseudonym(4711) == subject.pseudonym("4711")
    assert subject.pseudonym(4711.0) == subject.pseudonym("4711")
    assert subject.pseudonym(True) == subject.pseudonym("true")


def test_pseudonym_is_kept_as_is() -> None:
    subject = pseudonymiser()
    pseudonym = subject.pseudonym("Ada Lovelace")

    assert subject.pseudonym(pseudonym) == pseudonym


def test_reading_context_is_pseudonymised() -> None:
    subject = pseudonymiser()
    original = reading({"operator_id": "Ada Lovelace", "product_variant": "L", "setting1": 0.5})

    cleaned = subject.pseudonymise_event(original)

    assert cleaned.context == {
        "operator_id": subject.pseudonym("Ada Lovelace"),
        "product_variant": "L",
        "setting1": 0.5,
    }
    assert cleaned.channels == original.channels
    assert original.context["operator_id"] == "Ada Lovelace"


def test_event_without_personal_values_is_unchanged() -> None:
    subject = pseudonymiser()
    original = reading({"product_variant": "L"})

    assert subject.pseudonymise_event(original) is original


def test_operation_context_is_pseudonymised() -> None:
    subject = pseudonymiser()
    started = OperationStarted(
        job_id="J1",
        operation=0,
        machine_id="mill-01",
        ts=TS,
        context={"operator_id": 4711, "shift": "early"},
    )

    cleaned = subject.pseudonymise_event(started)

    assert cleaned.context == {"operator_id": subject.pseudonym("4711"), "shift": "early"}


def test_raw_json_is_pseudonymised_at_any_depth() -> None:
    subject = pseudonymiser()
    raw = json.dumps(
        {
            "machine_id": "mill-01",
            "contxt": {"operator_id": "Ada Lovelace"},
            "checks": [{"inspector": "Grace Hopper", "result": "ok"}],
            "note": "Ada Lovelace",
        }
    ).encode()

    cleaned, privacy, found = subject.pseudonymise_raw(raw)

    assert privacy == "pseudonymised"
    assert sorted(found) == ["Ada Lovelace", "Grace Hopper"]
    document = json.loads(cleaned or b"")
    assert document["contxt"]["operator_id"] == subject.pseudonym("Ada Lovelace")
    assert document["checks"][0] == {
        "inspector": subject.pseudonym("Grace Hopper"),
        "result": "ok",
    }
    # Free text is not searched: only values under personal field names are replaced.
    assert document["note"] == "Ada Lovelace"


def test_raw_without_personal_values_is_original() -> None:
    raw = b'{"machine_id": "mill-01", "seq": -1}'

    assert pseudonymiser().pseudonymise_raw(raw) == (raw, "original", [])


def test_raw_that_is_not_json_is_withheld() -> None:
    raw = b'{"context": {"operator_id": "Ada Lovelace"},}'

    assert pseudonymiser().pseudonymise_raw(raw) == (b"", "withheld", [])


def test_raw_is_original_without_personal_fields() -> None:
    raw = b"not json at all"

    assert Pseudonymiser(KEY, ()).pseudonymise_raw(raw) == (raw, "original", [])


def test_text_replaces_whole_words_only() -> None:
    subject = pseudonymiser()

    text = subject.pseudonymise_text("operator Li at Lister: Li", ["Li"])

    assert text == f"operator {subject.pseudonym('Li')} at Lister: {subject.pseudonym('Li')}"


class RecordingProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str | None, Event]] = []

    def send(self, topic: str, key: str | None, event: Event) -> None:
        self.sent.append((topic, key, event))


def test_dead_letter_raw_and_reason_are_pseudonymised() -> None:
    subject = pseudonymiser()
    producer = RecordingProducer()
    sink = DeadLetterSink(producer, pseudonymiser=subject)  # type: ignore[arg-type]
    raw = b'{"job_id": "J9", "context": {"operator_id": "Ada Lovelace"}}'

    sink.send("plantpulse.plan", 2, 40, b"J9", raw, "job J9 unknown (Ada Lovelace)")

    ((topic, key, letter),) = producer.sent
    assert isinstance(letter, DeadLetter)
    assert (topic, key) == ("plantpulse.dead-letter", "J9")
    assert letter.raw_privacy == "pseudonymised"
    assert letter.raw_size == len(raw)
    assert b"Ada Lovelace" not in letter.raw()
    assert json.loads(letter.raw())["context"]["operator_id"] == subject.pseudonym("Ada Lovelace")
    assert letter.error == f"job J9 unknown ({subject.pseudonym('Ada Lovelace')})"


def test_dead_letter_of_garbage_is_withheld() -> None:
    producer = RecordingProducer()
    sink = DeadLetterSink(producer, pseudonymiser=pseudonymiser())  # type: ignore[arg-type]

    sink.send("plantpulse.sensors", 0, 3, None, b"\xff\xfeAda", "value is not UTF-8")

    ((_, _, letter),) = producer.sent
    assert isinstance(letter, DeadLetter)
    assert letter.raw_privacy == "withheld"
    assert letter.raw_base64 == ""
    assert letter.raw_size == 5
    assert base64.b64decode(letter.raw_base64) == b""


def test_operation_history_point_keeps_context() -> None:
    subject = pseudonymiser()
    started = subject.pseudonymise_event(
        OperationStarted(
            job_id="J1", operation=2, machine_id="mill-01", ts=TS, context={"operator_id": "Ada"}
        )
    )

    (point,) = points_from_event(started)

    assert point.measurement == OPERATION_EVENT
    assert dict(point.tags) == {"machine_id": "mill-01", "event": "started"}
    assert point.time == TS
    assert dict(point.fields) == {
        "job_id": "J1",
        "operation": 2,
        "context.operator_id": subject.pseudonym("Ada"),
    }


def test_key_file_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "state" / "pseudonym.key"

    first = load_or_create_key(path)
    second = load_or_create_key(path)

    assert first == second
    assert len(first) == 64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [entry.name for entry in path.parent.iterdir()] == ["pseudonym.key"]


def test_existing_key_file_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "pseudonym.key"
    path.write_text("k" * 40 + "\n")
    path.chmod(0o600)

    assert load_or_create_key(path) == b"k" * 40


def test_key_file_readable_by_others_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "pseudonym.key"
    path.write_text("k" * 40)
    os.chmod(path, 0o644)

    with pytest.raises(PseudonymKeyError, match="has mode 0644") as caught:
        load_or_create_key(path)

    assert f"chmod 600 {path}" in str(caught.value)


def test_short_key_is_rejected() -> None:
    with pytest.raises(PseudonymKeyError, match=r"has 6 characters\. Use at least 32"):
        check_key("secret", "privacy.pseudonym_key")
