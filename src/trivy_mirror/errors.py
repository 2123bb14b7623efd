"""Every exception a user can cause or meet, in one tree.

Each derives from :class:`MirrorError`: ``str(err)`` is one line a person can act on and ``exit_code`` is what
the CLI exits with. Anything else escaping to the CLI is a bug. A failed copy says which side failed
(:class:`CopyError`, as oras-go's): ``cannot write to DEST: ...`` is not a reason to try the next source.

::

    MirrorError                  exit 1
    ├── UsageError               exit 2: bad flags, configuration or argument
    │   ├── InvalidReference     not an image reference, prefix or tag
    │   └── KeyFileError         a signing key file that cannot be used
    ├── InvalidDigest            not ``algorithm:hex``
    ├── VerificationError        content does not match its digest or size
    ├── InvalidManifest          a manifest that breaks the OCI rules
    ├── NotFound                 no such repository, tag, manifest or blob
    ├── RegistryError            a registry answered with an error status
    │   └── AuthError            credentials missing, rejected or insufficient
    ├── Unreachable              DNS, connection, TLS or timeout, after the retries
    ├── RefusedCandidate         unsafe for Trivy or older than what is served (the publish policy)
    ├── StoreError               the local store is locked, corrupt or cannot be written
    ├── BundleError              a bundle that is damaged, truncated, tampered with or hostile
    │   └── UnsafeMember         an archive member that could escape its directory
    ├── SignatureError           a signed bundle that does not verify against the key
    └── CopyError                a copy failed on one side: ``side``, ``location`` and the ``cause`` above

Internal signals that never reach a user (a layer without readable metadata, an HTTP error answer the server
sends) stay beside the code that raises and catches them.
"""

from __future__ import annotations

from typing import Literal

Side = Literal["source", "destination"]


class MirrorError(Exception):
    """Base of every expected failure; ``str(err)`` is the one-line message shown to the user."""

    exit_code = 1


class UsageError(MirrorError):
    """Bad flags, bad configuration or a malformed argument."""

    exit_code = 2


class InvalidReference(UsageError):
    """A string that is not a valid image reference, repository prefix or tag."""


class KeyFileError(UsageError):
    """A key file that cannot be read, written, or is not an Ed25519 key in the expected PEM form."""


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


class BundleError(MirrorError):
    """A bundle that is not one, is damaged, truncated, tampered with or hostile."""


class UnsafeMember(BundleError):
    """An archive member that could write outside its destination or is not a plain file or directory."""


class SignatureError(MirrorError):
    """An envelope that is missing, malformed, signed by another key, or whose signature does not verify."""


class CopyError(MirrorError):
    """A copy failed on one ``side`` at ``location`` (a repository, a layout); ``cause`` is what happened there.

    The engine raises it for every failure of one of its ends, so a caller trying sources in order knows a
    destination failure is no reason to try the next source. The exit code is the cause's.
    """

    def __init__(self, side: Side, location: str, cause: MirrorError | OSError) -> None:
        self.side: Side = side
        self.location = location
        self.cause = cause
        self.exit_code = cause.exit_code if isinstance(cause, MirrorError) else 1
        detail = cause if isinstance(cause, MirrorError) else (cause.strerror or cause)
        verb = "write to" if side == "destination" else "read from"
        super().__init__(f"cannot {verb} {location}: {detail}")

    @property
    def reason(self) -> str:
        """The cause as one line, without the location (for callers that name the place themselves)."""
        return str(self.cause) if isinstance(self.cause, MirrorError) else str(self.cause.strerror or self.cause)
