"""style_tf.paths: where the bundled files are, importable without TensorFlow."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_paths_imports_without_tensorflow():
    code = "import style_tf.paths, sys; assert 'tensorflow' not in sys.modules, 'tensorflow imported'"
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
