"""The README's two commands are the contract with new users and CI: keep them in step."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    quick_start = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", quick_start)


def test_first_command_sets_up_and_runs_the_default_search():
    setup = commands()[0]
    assert setup.startswith("python3 -m venv")
    assert "pip install torch==2.13.0 &&" in setup  # the CPU wheel before anything pulls torch
    assert setup.endswith("edas-agent run --budget 50")


def test_ci_runs_the_readme_test_command_verbatim():
    test_command = commands()[1]
    assert test_command.endswith("pytest")
    assert test_command in (ROOT / ".ci" / "run").read_text().splitlines()


def test_the_readme_stays_short_and_its_links_resolve():
    """At most 300 lines: the rest is the docs site. Every relative link points at a file."""
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 300
    links = re.findall(r"\]\(([^)#]+)\)", text)
    local = [link for link in links if "://" not in link]
    assert local and all((ROOT / link).is_file() for link in local), local


def test_ci_builds_the_docs_site_with_warnings_as_errors():
    assert "mkdocs build --strict -f docs/mkdocs.yml" in (ROOT / ".ci" / "run").read_text()
