"""The repository is whole: nothing tracked cites files outside it, and the repository's tools
stay apart (benchmarks/ and export/ import neither from the other)."""

import ast
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# Spelt in pieces so that this file does not cite them itself.
OUTSIDE = ["../" + "shared", "shared" + "/data", "DESIGN" + ".md"]


def tracked() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [REPO / name for name in out.decode().split("\0") if name]


def test_no_tracked_file_cites_files_outside_the_repository():
    files = tracked()
    assert any(f.name == "BUILD.md" for f in files)  # The listing is the repository's.
    cited = [f"{f.relative_to(REPO)}: {word}" for f in files if f.is_file()
             for word in OUTSIDE if word.encode() in f.read_bytes()]
    assert not cited, cited


def _imported(folder: str) -> set[str]:
    """Top-level names imported by the Python files of a folder of the repository."""
    names = set()
    for path in (REPO / folder).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
    return names


def test_benchmarks_and_export_import_neither_from_the_other():
    assert "benchmarks" in _imported("benchmarks") and "style_tf" in _imported("export")  # Parsed.
    assert "export" not in _imported("benchmarks")
    assert "benchmarks" not in _imported("export")
