"""The exception hierarchy.

Every error a user can cause or meet derives from :class:`MirrorError`. Its message is one line a person can
act on, and its ``exit_code`` is what the CLI exits with. Anything else escaping to the CLI is a bug.
"""

from __future__ import annotations


class MirrorError(Exception):
    """Base of every expected failure; ``str(err)`` is the one-line message shown to the user."""

    exit_code = 1


class UsageError(MirrorError):
    """Bad flags, bad configuration or a malformed argument."""

    exit_code = 2


class InvalidReference(UsageError):
    """A string that is not a valid image reference, repository prefix or tag."""


class InvalidDigest(MirrorError):
    """A string that is not a valid ``algorithm:hex`` digest."""


class VerificationError(MirrorError):
    """Content did not match its expected digest or size."""


class InvalidManifest(MirrorError):
    """A manifest or index that cannot be parsed, is too large or breaks the OCI rules."""


class NotFound(MirrorError):
    """A repository, tag, manifest or blob that does not exist."""


class RegistryError(MirrorError):
    """A registry answered with an error status."""

    def __init__(self, message: str, status: int | None = None, codes: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.codes = codes


class AuthError(RegistryError):
    """Credentials were missing, rejected or insufficient."""


class Unreachable(MirrorError):
    """A host could not be reached (DNS, connection, TLS, timeout) after the allowed retries."""


class RefusedCandidate(MirrorError):
    """An artifact that would break Trivy clients or go backwards; the current version is kept."""


class StoreError(MirrorError):
    """The local store is locked, corrupt or cannot be written."""
