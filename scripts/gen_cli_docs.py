"""Regenerate what the documentation derives from the CLI: README's settings table and docs/man/*.1.

    PYTHONPATH=src python3 scripts/gen_cli_docs.py

tests/unit/cli/test_config.py and test_shell.py fail when a committed copy differs from what the code
derives now; run this after changing an option or a help text.
"""

from __future__ import annotations

from pathlib import Path

from trivy_mirror.cli import cli
from trivy_mirror.cli.config import settings_table
from trivy_mirror.ui.manpage import pages

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- settings-table:start -->\n", "<!-- settings-table:end -->"


def main() -> None:
    readme = ROOT / "README.md"
    before, rest = readme.read_text().split(START, 1)
    readme.write_text(before + START + settings_table(cli) + END + rest.split(END, 1)[1])
    man = ROOT / "docs" / "man"
    man.mkdir(parents=True, exist_ok=True)
    rendered = pages(cli)
    for stale in set(p.name for p in man.glob("*.1")) - set(rendered):
        (man / stale).unlink()
    for name, text in rendered.items():
        (man / name).write_text(text)
    print(f"README.md settings table and {len(rendered)} man pages in {man.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
