"""``trivy-mirror trivy-cache``: a Trivy cache directory filled from the store."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from trivy_mirror.catalog.assets import AssetSpec
from trivy_mirror.errors import StoreError, UsageError
from trivy_mirror.store import Store, default_store_dir
from trivy_mirror.trivycache import VEX_CONFIG, TrivyCacheWriter, trivy_command
from trivy_mirror.trivyconf import parse_mirror, vex_config_path
from trivy_mirror.vex.status import ASSET as VEX_ASSET


def run_trivy_cache(cache_dir: Path, store_dir: Path | None, specs: Sequence[AssetSpec], vex: bool | None,
                    mirror: str | None = None) -> int:
    """Write the cache; the Trivy command line goes to stdout, what was written to stderr.

    ``vex``: True to require the store's VEX repositories, None to add those there are, False for none.
    ``mirror``: the serve URL the VEX entries name instead of their upstream.
    """
    if mirror is not None and not parse_mirror(mirror).transport:
        raise UsageError(f"--mirror {mirror!r}: VEX repositories are served by trivy-mirror serve: give its "
                         f"http(s):// URL")
    store = Store(store_dir or default_store_dir())
    if not store.root.is_dir():
        raise StoreError(f"there is no store at {store.root}; run trivy-mirror sync or import first (or give --store)")
    cache = cache_dir.absolute()
    components = TrivyCacheWriter(store, cache, mirror=mirror).write(specs, vex)
    print(f"Trivy cache written to {cache}:", file=sys.stderr)
    for component in components:
        print(f"  {component.directory + '/':9} {component.reference} {component.digest[:19]}  {component.summary}",
              file=sys.stderr)
    if any(component.asset == VEX_ASSET for component in components):
        config, home = cache / VEX_CONFIG, vex_config_path()
        print(f"VEX: Trivy reads its list of repositories from its home, not the cache: install {config} with\n"
              f"  mkdir -p {shlex.quote(str(home.parent))} && cp {shlex.quote(str(config))} "
              f"{shlex.quote(str(home))}", file=sys.stderr)
        if mirror is None:
            print("VEX: repository.yaml names each repository's upstream: once its update_interval passes, a scan "
                  "without --skip-vex-repo-update tries that upstream (give --mirror URL to name the mirror)",
                  file=sys.stderr)
    print("Scan with (any scan subcommand; trivy config takes only --skip-check-update):", file=sys.stderr)
    print(trivy_command(cache, components))
    return 0
