"""Customers keyed by a salted hash of their email (or of a shop's own customer id), never by the value.

The same salt maps the same email to the same ``customer_id`` in every import, so keep the salt; without
it nobody (us included) can tell which email a ``customer_id`` stands for.
"""

from __future__ import annotations

import hashlib
import hmac

import pandas as pd

PREFIX = "c_"
DIGEST_CHARS = 20  # 80 bits: no collision in practice for a shop's customers
MIN_SALT_BYTES = 16


class SaltError(ValueError):
    """The salt is too short to keep customer ids from being guessed."""


def check_salt(salt: bytes, source: str) -> bytes:
    """``salt`` when it is long enough; SaltError naming where it came from otherwise."""
    if len(salt) < MIN_SALT_BYTES:
        raise SaltError(
            f"salt from {source}: expected at least {MIN_SALT_BYTES} bytes, found {len(salt)}; use a long random "
            "value (e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`)"
        )
    return salt


def normalise_emails(emails: pd.Series) -> pd.Series:
    """Emails trimmed and lower-cased (one customer whatever the case); empty text becomes null."""
    text = emails.astype("str").str.strip().str.lower()
    return text.where(emails.notna() & text.str.len().gt(0))


def pseudonymise(keys: pd.Series, salt: bytes) -> pd.Series:
    """``c_<hmac-sha256(salt, key)>`` per non-null key (already normalised); null stays null."""
    check_salt(salt, "the caller")
    cache: dict[str, str] = {}

    def one(key: object) -> str | None:
        if key is None or (isinstance(key, float) and key != key) or key is pd.NA:
            return None
        text = str(key)
        if text not in cache:
            digest = hmac.new(salt, text.encode("utf-8"), hashlib.sha256).hexdigest()
            cache[text] = PREFIX + digest[:DIGEST_CHARS]
        return cache[text]

    return pd.Series([one(k) for k in keys], index=keys.index, dtype=object)
