"""Paginated listings (tags, referrers): the next page is the ``Link: <...>; rel="next"`` of each answer, as the
OCI distribution spec describes for both. Followed on the registry's own origin only, for a bounded number of
pages: a broken or hostile registry cannot keep a sync listing forever or send it elsewhere."""

from __future__ import annotations

import aiohttp
from yarl import URL

from trivy_mirror.errors import RegistryError

MAX_PAGES = 100
"""Pages read for one listing (the first included); a listing with more is refused."""


class Pages:
    """The pages of one listing: :meth:`next` reads each answer's link to the following page."""

    def __init__(self, host: str, operation: str, origin: URL) -> None:
        self.host = host
        self.operation = operation
        self.origin = origin.origin()
        """The registry's own origin (scheme, host, port): a link elsewhere is refused."""
        self.read = 0
        self._seen: set[str] = set()

    def next(self, response: aiohttp.ClientResponse) -> URL | None:
        """The URL of the page after ``response`` (a relative link resolved against it), or None after the last
        page, or when the link names a page already read (a loop ends the listing, it does not repeat it).

        Raises RegistryError for a link to another origin or past :data:`MAX_PAGES` pages."""
        self.read += 1
        self._seen.add(str(response.url))
        try:
            link = response.links.get("next")
        except ValueError:
            raise RegistryError(f"{self.host}: {self.operation}: invalid next-page link") from None
        following = link.get("url") if link is not None else None
        if not isinstance(following, URL) or str(following) in self._seen:
            return None
        if following.origin() != self.origin:
            raise RegistryError(f"{self.host}: {self.operation}: the registry links the next page to another "
                                f"host ({following.origin()}); refused")
        if self.read >= MAX_PAGES:
            raise RegistryError(f"{self.host}: {self.operation}: the listing has more than {MAX_PAGES} pages")
        return following
