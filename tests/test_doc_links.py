"""README.md and docs/*.md link only to files inside the repository (no ``../`` out of it, no
web addresses), and every link they make resolves to a file or directory that exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def bad_links(doc: Path, root: Path) -> list[str]:
    """One line per link of ``doc`` that leaves ``root`` or points at nothing."""
    problems = []
    for n, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
        for target in LINK.findall(line):
            path = target.split("#", 1)[0]
            if re.match(r"[a-z][a-z0-9+.-]*:", target):
                problems.append(f"{doc.name}:{n}: {target} is outside the repository")
            elif path:
                resolved = (doc.parent / path).resolve()
                if not resolved.is_relative_to(root):
                    problems.append(f"{doc.name}:{n}: {target} is outside the repository")
                elif not resolved.exists():
                    problems.append(f"{doc.name}:{n}: {target} does not exist")
    return problems


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_links_stay_inside_the_repository(doc: Path) -> None:
    """Every link of the document resolves inside the repository."""
    assert bad_links(doc, ROOT) == []


def test_checker_flags_links_out_of_the_repository(tmp_path: Path) -> None:
    """The checker names ../ links, web addresses and missing files (so the test can fail)."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("x")
    doc = tmp_path / "README.md"
    doc.write_text(
        "[d](../shared/DESIGN.md) [w](https://example.org) [m](docs/missing.md) [ok](docs/a.md#x)\n"
    )
    assert bad_links(doc, tmp_path) == [
        "README.md:1: ../shared/DESIGN.md is outside the repository",
        "README.md:1: https://example.org is outside the repository",
        "README.md:1: docs/missing.md does not exist",
    ]
