"""The Colab notebook as a user runs it, on CPU: its own install cell installs the checkout
(not editable) into a folder of its own, then packing, training, resuming and copying the
decoder run from that install, with the settings cell's values swapped for local ones."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from conftest import pip_env
from PIL import Image

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "train_adain_tpu.ipynb"

# Runs every code cell in order; right after the settings cell, `LOCAL` replaces its values.
RUNNER = """
import json, sys
cells = [c for c in json.load(open(sys.argv[1]))["cells"] if c["cell_type"] == "code"]
scope = {}
for cell in cells:
    source = "".join(cell["source"])
    exec(compile(source, sys.argv[1], "exec"), scope)
    if source.startswith("# Settings."):
        scope.update(json.loads(sys.argv[2]))
print("installed at", scope["style_tf"].__file__)
print("last", scope["last"])
"""


def test_notebook_installs_packs_trains_and_resumes_on_cpu(tmp_path, clean_source):
    rng = np.random.default_rng(0)
    for kind in ("photos", "paintings"):
        (tmp_path / kind).mkdir()
        for i in range(2):
            pixels = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / kind / f"{i}.png")
    (tmp_path / "bucket").mkdir()
    local = {"REPO": str(clean_source), "BUCKET": str(tmp_path / "bucket"), "STRATEGY": "default",
             "STEPS": 2, "BATCH_PER_REPLICA": 1, "IMAGE_SIZE": 32}
    env = pip_env(tmp_path / "site")

    def run(steps):
        args = [sys.executable, "-c", RUNNER, str(NOTEBOOK), json.dumps({**local, "STEPS": steps})]
        return subprocess.run(args, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=900)

    first = run(2)
    assert first.returncode == 0, first.stderr
    assert f"installed at {tmp_path / 'site'}" in first.stdout  # Not the checkout's editable install.
    assert len(list((tmp_path / "bucket").glob("content-*.tfrecord"))) == 2
    assert (tmp_path / "adain_decoder.weights.h5").is_file()
    second = run(3)  # Running the notebook again resumes from the bucket's checkpoint.
    assert second.returncode == 0, second.stderr
    assert "already there" in second.stdout, second.stdout
    assert "resumed from step 2" in second.stderr, second.stderr
