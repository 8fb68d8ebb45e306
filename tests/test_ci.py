"""CI's own script: it must fail, before installing anything, when the shared data is not beside the project."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_fails_without_the_shared_data(tmp_path):
    project = tmp_path / "clone"
    (project / ".ci").mkdir(parents=True)
    shutil.copy(ROOT / ".ci" / "run", project / ".ci" / "run")
    result = subprocess.run(["bash", str(project / ".ci" / "run")], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "../shared/data is missing" in result.stderr
    assert "pip" not in result.stdout  # it stopped before installing


def test_ci_checks_lint_and_format_and_runs_the_readme_test_command():
    script = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    for command in ("ruff check", "ruff format --check", "pytest -q"):
        assert command in script and command in readme, command
