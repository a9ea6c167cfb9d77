"""The Colab notebook's code cells run on CPU with the strategy switched to default."""

import json
from pathlib import Path

import numpy as np
from PIL import Image

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "train_adain_tpu.ipynb"


def test_notebook_cells_train_on_cpu(tmp_path):
    rng = np.random.default_rng(0)
    for kind in ("content", "style"):
        (tmp_path / kind).mkdir()
        for i in range(2):
            pixels = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / kind / f"{i}.png")
    cells = [c for c in json.loads(NOTEBOOK.read_text())["cells"] if c["cell_type"] == "code"]
    scope = {}
    for cell in cells:
        source = "".join(cell["source"])
        exec(compile(source, str(NOTEBOOK), "exec"), scope)
        if "STRATEGY = 'tpu'" in source:  # The settings cell: swap in CPU values.
            scope.update(STRATEGY="default", CONTENT=str(tmp_path / "content"),
                         STYLE=str(tmp_path / "style"), MODEL_DIR=str(tmp_path / "m"), STEPS=2,
                         BATCH_PER_REPLICA=1, IMAGE_SIZE=32)
    assert (tmp_path / "m" / "decoder.weights.h5").is_file()
    assert scope["last"]["total"] > 0
