"""Who is acting: names normalised before the two-person rule compares them, bearer tokens kept hashed with an
expiry, and the command line's identity (a token, else the operating-system user)."""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

MAX_NAME = 64


class IdentityError(ValueError):
    """A name or token that cannot identify anyone."""


def normalise(name: str) -> str:
    """One spelling per person: NFKC, surrounding white space gone, case folded (`` Mallory`` is ``mallory``)."""
    if not isinstance(name, str):
        raise IdentityError("a name is text")
    folded = unicodedata.normalize("NFKC", name).strip().casefold()
    if not folded:
        raise IdentityError("a name may not be empty")
    if len(folded) > MAX_NAME or any(unicodedata.category(c)[0] in "CZ" and c != " " for c in folded):
        raise IdentityError(f"{name!r} is not a usable name (at most {MAX_NAME} printable characters)")
    return folded


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Holder:
    """Who a token belongs to, the role it carries and when it stops working."""

    user: str
    role: str
    expires: datetime


class TokenBook:
    """Tokens by their SHA-256 (a leaked book does not hand out tokens), each with a user, a role and an
    expiry. Kept in memory, or in a JSON file written with mode 0600."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._by_hash: dict[str, Holder] = {}
        if path is not None and path.exists():
            for h, v in json.loads(path.read_text()).items():
                self._by_hash[h] = Holder(v["user"], v["role"], datetime.fromisoformat(v["expires"]))

    def issue(self, user: str, role: str, ttl: timedelta = timedelta(hours=12)) -> str:
        """A fresh token for ``user``; only its hash is kept."""
        token = secrets.token_urlsafe(24)
        self._by_hash[token_hash(token)] = Holder(normalise(user), role, datetime.now(UTC) + ttl)
        self._save()
        return token

    def add(self, token: str, holder: Holder) -> None:
        self._by_hash[token_hash(token)] = holder
        self._save()

    def holder(self, token: str, now: datetime | None = None) -> Holder:
        found = self._by_hash.get(token_hash(token))
        if found is None:
            raise IdentityError("unknown token")
        if found.expires <= (now or datetime.now(UTC)):
            raise IdentityError("expired token")
        return found

    def _save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            json.dump({h: {"user": v.user, "role": v.role, "expires": v.expires.isoformat()}
                       for h, v in self._by_hash.items()}, file)


def cli_identity(book_path: Path | None = None) -> str:
    """The person at the command line: the holder of ``NETPILOT_TOKEN`` when it is set (looked up in the token
    book), otherwise the operating-system user this process runs as. Neither is a name typed on the line."""
    token = os.environ.get("NETPILOT_TOKEN")
    if token:
        if book_path is None or not book_path.exists():
            raise IdentityError("NETPILOT_TOKEN is set but there is no token book to check it against "
                                f"({book_path or 'none given'})")
        return TokenBook(book_path).holder(token).user
    return normalise(pwd.getpwuid(os.geteuid()).pw_name)
