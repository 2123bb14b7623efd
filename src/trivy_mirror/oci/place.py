"""One type for every place an artifact is read from or written to (regclient's ``ref.Ref`` with a scheme).

A :class:`Place` names *where*: a registry prefix or artifact, an OCI layout directory, a static tree or the
store. A :class:`~trivy_mirror.oci.reference.Reference` is what the registry client requests: a place at a
registry turns into one with :meth:`Place.reference` (a repository under a prefix) or :meth:`Place.artifact`
(the artifact the place itself names). Parsing does no I/O; opening a place is the job of the layers above
(``mirror.endpoints.open_destination`` for sync destinations, ``mirror.copy`` for copy ends).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from trivy_mirror.errors import InvalidReference
from trivy_mirror.oci.digest import Digest
from trivy_mirror.oci.reference import (
    DOCKER_HUB,
    Reference,
    is_registry_component,
    validate_registry,
    validate_repository,
    validate_tag,
)

Scheme = Literal["registry", "oci-layout", "static", "store"]
"""Which kind of place: ``registry`` (a host and a repository path), ``oci-layout`` (any directory holding one
OCI image layout), ``static`` (a static tree served by a web server) or ``store`` (trivy-mirror's store, named by
``--store`` and never written as text)."""

REGISTRY: Scheme = "registry"
OCI_LAYOUT: Scheme = "oci-layout"
STATIC: Scheme = "static"
STORE: Scheme = "store"

_TRANSPORTS = {"https": "https", "http": "http", "docker": None}
"""The URL schemes a registry place may start with, and the transport each fixes (``docker://`` fixes none)."""


@dataclass(frozen=True)
class Place:
    """Where artifacts are: a registry (``registry`` + repository ``path``), or a directory (``path``) of a file
    place (``oci-layout``, ``static``, ``store``); ``tag``/``digest`` when the place is one artifact.

    ``transport`` is ``https`` or ``http`` when the text named one: the registry is then reached over that scheme
    only, never probed for the other (None: probe, as for ``docker://`` or no scheme). It plays no part in
    equality or the label.
    """

    registry: str = ""
    path: str = ""
    scheme: Scheme = REGISTRY
    transport: str | None = field(default=None, compare=False)
    tag: str | None = None
    digest: Digest | None = None

    @classmethod
    def parse(cls, text: str, *, artifact: bool = False) -> Place:
        """Parse a place; ``artifact`` for one end of a copy (a tag or digest may follow), else a prefix.

        Accepted forms (``SCHEME`` is ``https://``, ``http://`` or ``docker://``):

        - ``[SCHEME]HOST[:PORT][/PATH]``: a registry prefix; a first component without ``.`` or ``:`` (and not
          ``localhost``) is a Docker Hub path, as in Docker;
        - with ``artifact``: ``[SCHEME][HOST[:PORT]/]REPO[:TAG][@DIGEST]``, a registry artifact;
        - ``oci-layout:DIR`` (with ``artifact``: ``oci-layout:DIR:TAG``): an OCI layout, any directory;
        - ``static:DIR`` (not with ``artifact``): a static tree.

        The store has no text form (``--store`` names it): :meth:`store`.
        """
        scheme = scheme_of(text)
        if scheme == OCI_LAYOUT:
            return cls._layout(text, artifact)
        if scheme == STATIC:
            return cls._static(text, artifact)
        if artifact:
            return cls._artifact(text)
        return cls._prefix(text)

    @classmethod
    def parse_registry(cls, text: str) -> Place:
        """A registry prefix (a sync source): :meth:`parse`, refusing the file places."""
        place = cls.parse(text)
        if place.scheme != REGISTRY:
            raise InvalidReference(f"{text!r} is not a registry prefix: give [https://|http://]HOST[:PORT][/PATH]")
        return place

    @classmethod
    def store(cls, directory: Path) -> Place:
        """The store at ``directory``."""
        return cls(path=str(directory), scheme=STORE)

    @classmethod
    def _prefix(cls, text: str) -> Place:
        transport, text = _transport(text.strip())
        text = text.rstrip("/")
        if not text:
            raise InvalidReference("empty registry prefix")
        first, _, rest = text.partition("/")
        if not is_registry_component(first):
            registry, path = DOCKER_HUB, text
        else:
            registry, path = validate_registry(first), rest
        if path:
            validate_repository(path)
        return cls(registry, path, REGISTRY, transport)

    @classmethod
    def _artifact(cls, text: str) -> Place:
        transport, rest = _transport(text)
        reference = Reference.parse(rest, default_tag=None)
        return cls(reference.registry, reference.repository, REGISTRY, transport, reference.tag, reference.digest)

    @classmethod
    def _layout(cls, text: str, artifact: bool) -> Place:
        rest = text[len("oci-layout:"):]
        if not artifact:
            if not rest:
                raise InvalidReference(f"{text!r}: an OCI layout is oci-layout:DIR")
            return cls(path=rest, scheme=OCI_LAYOUT)
        directory, sep, tag = rest.rpartition(":")
        if not sep or "/" in tag or not directory:
            raise InvalidReference(f"{text!r}: an OCI layout end is oci-layout:DIR:TAG")
        return cls(path=directory, scheme=OCI_LAYOUT, tag=validate_tag(tag))

    @classmethod
    def _static(cls, text: str, artifact: bool) -> Place:
        if artifact:
            raise InvalidReference(f"{text!r}: a static tree is a sync destination, not one artifact's place")
        directory = text[len("static:"):]
        if not directory:
            raise InvalidReference("static: needs a directory, e.g. --to static:/srv/trivy-mirror")
        return cls(path=directory, scheme=STATIC)

    @property
    def directory(self) -> Path:
        """The directory of a file place (``~`` expanded)."""
        return Path(self.path).expanduser()

    def repository(self, relative: str) -> str:
        """The repository ``relative`` to a registry prefix."""
        return f"{self.path}/{relative}" if self.path else relative

    def reference(self, relative: str, tag: str) -> Reference:
        """The artifact ``relative:tag`` under a registry prefix."""
        return Reference(self.registry, self.repository(relative), tag)

    def artifact(self) -> Reference:
        """The artifact a registry place names (``latest`` without a tag or digest; Docker Hub's ``library/``)."""
        repository = self.path
        if self.registry == DOCKER_HUB and "/" not in repository:
            repository = f"library/{repository}"
        tag = self.tag if self.tag or self.digest else "latest"
        return Reference(self.registry, repository, tag, self.digest)

    @property
    def manifest_reference(self) -> str:
        """What to ask a target for: the digest when there is one, else the tag (``latest`` at a registry)."""
        if self.scheme == REGISTRY:
            return self.artifact().reference
        return str(self.digest) if self.digest else str(self.tag)

    @property
    def push_tag(self) -> str | None:
        """The tag a copy writes (none for an artifact named by digest alone, or by tag and digest)."""
        if self.scheme == REGISTRY:
            reference = self.artifact()
            return reference.tag if reference.digest is None else None
        return self.tag

    @property
    def url(self) -> str:
        """The label with the transport in front when one was named (``http://10.0.0.5:5000/trivy``)."""
        return f"{self.transport}://{self}" if self.transport else str(self)

    def __str__(self) -> str:
        """The label messages show: ``HOST/PATH[:TAG][@DIGEST]``, ``oci-layout:DIR[:TAG]``, ``static:DIR``, or
        the store's directory."""
        if self.scheme == STORE:
            return self.path
        if self.scheme != REGISTRY:
            return f"{self.scheme}:{self.path}" + (f":{self.tag}" if self.tag else "")
        text = f"{self.registry}/{self.path}" if self.path else self.registry
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def scheme_of(text: str) -> Scheme:
    """Which kind of place ``text`` names, by its prefix alone (:meth:`Place.parse` validates the rest)."""
    for scheme in (OCI_LAYOUT, STATIC):
        if text.startswith(f"{scheme}:"):
            return scheme
    return REGISTRY


def _transport(text: str) -> tuple[str | None, str]:
    """The transport a ``https://``, ``http://`` or ``docker://`` in front of ``text`` names, and the rest."""
    scheme, sep, rest = text.partition("://")
    if sep and scheme.lower() in _TRANSPORTS:
        return _TRANSPORTS[scheme.lower()], rest
    return None, text

