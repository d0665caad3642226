"""Pseudonymisation of personal context fields, applied as records are consumed.

A plant description marks some context fields as personal, such as an operator's badge.
Each value of such a field, in a reading's or a plan event's `context`, is replaced by
`psn:` and the first 32 hex digits (128 bits) of its HMAC-SHA256 under a secret key.
The same value always gets the same pseudonym under one key, so readings, plan events
and history rows of one person still join. Without the key, the pseudonym of a guessed
badge or name cannot be computed.

The stream processor applies this to every decoded event before its handler sees it, so
machine states, schedules, history and logs only ever contain pseudonyms. The raw bytes
of a dead letter get the same treatment: personal values in a JSON record are
pseudonymised in place, and a record that is not JSON is withheld, because nobody can
tell where its personal values are.

A value that already is a pseudonym (it matches `psn:` and 32 hex digits) is kept, so
a producer that pseudonymises with the same key before sending is not hashed twice.

NOTE: only fields that the plant description marks personal are replaced. A misnamed
context key, or free text such as a `JobCancelled` reason, passes in clear.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
import secrets
import stat
from collections.abc import Iterable, Mapping
from hashlib import sha256
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from ingest.events import RawPrivacy

logger = logging.getLogger(__name__)

PSEUDONYM_PREFIX = "psn:"
PSEUDONYM_PATTERN = re.compile(r"^psn:[0-9a-f]{32}$")
MIN_KEY_LENGTH = 32
KEY_FILE_MODE = 0o600

EventT = TypeVar("EventT", bound=BaseModel)


class PseudonymKeyError(ValueError):
    """A pseudonym key that is too short, or a key file that cannot be used."""


def check_key(key: str, source: str) -> bytes:
    """Return `key` as HMAC key bytes, or raise PseudonymKeyError when it is too short."""
    text = key.strip()
    if len(text) < MIN_KEY_LENGTH:
        raise PseudonymKeyError(
            f"the pseudonym key from {source} has {len(text)} characters. Use at least "
            f"{MIN_KEY_LENGTH}, e.g. the output of `python -c 'import secrets; "
            "print(secrets.token_hex(32))'`"
        )
    return text.encode("utf-8")


def load_or_create_key(path: Path) -> bytes:
    """Return the key stored in `path`, first creating a random one there if it is missing.

    A new key is 64 hex digits (256 bits) in a file of mode 0600, linked into place only
    when no other process created one first, so concurrent starts share one key.

    Raises:
        PseudonymKeyError: the file is readable or writable by other users, or its key
            is too short.
        OSError: the file or its folder cannot be read or created.
    """
    if not path.exists():
        _create_key_file(path)

    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise PseudonymKeyError(
            f"pseudonym key file {path} has mode {mode:04o}, so users other than its owner "
            f"can use it. Run `chmod 600 {path}`"
        )
    return check_key(path.read_text(encoding="ascii"), str(path))


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as stream:
            stream.write(secrets.token_hex(32) + "\n")
            stream.flush()
            os.fsync(stream.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return
        logger.warning(
            "created a new pseudonym key in %s. Every host whose pseudonyms must match "
            "needs the same key, so copy it into privacy.pseudonym_key there",
            path,
        )
    finally:
        temporary.unlink(missing_ok=True)


class Pseudonymiser:
    """Keyed pseudonyms for the values of `personal_fields` in events and raw records."""

    def __init__(
        self, key: bytes, personal_fields: Iterable[str], cache_size: int = 10_000
    ) -> None:
        if not key:
            raise PseudonymKeyError("the pseudonym key is empty")
        self._key = key
        self.personal_fields = frozenset(personal_fields)
        self._cache: dict[str, str] = {}
        self._cache_size = cache_size

    def pseudonym(self, value: Any) -> str:
        """Return the pseudonym of one value, or the value itself when it is a pseudonym."""
        text = _canonical_text(value)
        if PSEUDONYM_PATTERN.match(text):
            return text

        cached = self._cache.get(text)
        if cached is not None:
            return cached
        digest = hmac.new(self._key, text.encode("utf-8"), sha256).hexdigest()
        pseudonym = PSEUDONYM_PREFIX + digest[:32]
        if len(self._cache) >= self._cache_size:
            self._cache.clear()
        self._cache[text] = pseudonym
        return pseudonym

    def pseudonymise_context(self, context: Mapping[str, Any]) -> dict[str, Any] | None:
        """Return `context` with personal values replaced, or None when none needed it."""
        changed: dict[str, Any] | None = None
        for name in self.personal_fields.intersection(context):
            value = context[name]
            pseudonym = self.pseudonym(value)
            if pseudonym != value:
                changed = changed if changed is not None else dict(context)
                changed[name] = pseudonym
        return changed

    def pseudonymise_event(self, event: EventT) -> EventT:
        """Return `event` with the personal values of its `context` replaced.

        Events without a `context` field, or whose context has no personal values, are
        returned unchanged.
        """
        context = getattr(event, "context", None)
        if not isinstance(context, Mapping) or not self.personal_fields:
            return event
        changed = self.pseudonymise_context(context)
        if changed is None:
            return event
        return event.model_copy(update={"context": changed})

    def pseudonymise_raw(self, raw: bytes | None) -> tuple[bytes | None, RawPrivacy, list[str]]:
        """Return the raw bytes of a record with every personal value replaced.

        Every value stored under a personal field name, at any depth of a JSON document,
        is replaced, because a record that failed validation may keep its context in the
        wrong place. Returns the new bytes, what was done to them, and the clear-text
        values found, so that an error message can be cleaned the same way. Bytes that
        are not a UTF-8 JSON document are withheld (returned as b""), unless no field is
        personal.
        """
        if raw is None or not self.personal_fields:
            return raw, "original", []
        try:
            document = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            return b"", "withheld", []

        found: list[str] = []
        cleaned = self._pseudonymise_document(document, found)
        if not found:
            return raw, "original", []
        text = json.dumps(cleaned, ensure_ascii=False, separators=(",", ":"))
        return text.encode("utf-8"), "pseudonymised", found

    def pseudonymise_text(self, text: str, clear_values: Iterable[str]) -> str:
        """Return `text` with each whole-word occurrence of `clear_values` replaced."""
        for value in sorted(set(clear_values), key=len, reverse=True):
            if not value:
                continue
            pattern = re.compile(rf"(?<!\w){re.escape(value)}(?!\w)")
            text = pattern.sub(self.pseudonym(value), text)
        return text

    def _pseudonymise_document(self, node: Any, found: list[str]) -> Any:
        if isinstance(node, list):
            return [self._pseudonymise_document(item, found) for item in node]
        if not isinstance(node, dict):
            return node

        cleaned: dict[str, Any] = {}
        for name, value in node.items():
            if name not in self.personal_fields:
                cleaned[name] = self._pseudonymise_document(value, found)
                continue
            if value is None:
                cleaned[name] = None
                continue

            # A structured value under a personal name may hold personal data anywhere,
            # so it is pseudonymised as a whole.
            if isinstance(value, dict | list):
                value = json.dumps(value, sort_keys=True)
            pseudonym = self.pseudonym(value)
            if pseudonym != value:
                found.append(_canonical_text(value))
            cleaned[name] = pseudonym
        return cleaned


def _canonical_text(value: Any) -> str:
    """Return the text that is hashed for `value`: 17, 17.0 and "17" give the same."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
