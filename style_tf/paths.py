"""Where the bundled files are: `models/` and `examples/`, in a checkout or an installed wheel.

In the repository they sit beside the package; a wheel carries them inside it, as
`style_tf/models` and `style_tf/examples` (setup.cfg maps the folders there), so a
non-editable install finds them too. No TensorFlow here: entry points and `errors` import it.
"""

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _bundled(name: str) -> Path:
    inside = _PACKAGE / name  # An installed wheel.
    return inside if inside.is_dir() else _PACKAGE.parent / name  # A checkout (editable install).


def models_dir() -> Path:
    """The folder of bundled models: `$STYLE_TF_MODELS` if set, else the bundled `models/`."""
    return Path(os.environ["STYLE_TF_MODELS"]) if os.environ.get("STYLE_TF_MODELS") else _bundled("models")


EXAMPLES = _bundled("examples")  # content/ and style/: the quick start's photos and paintings.
EXAMPLE_CONTENT = EXAMPLES / "content" / "chelsea.png"
EXAMPLE_STYLE = EXAMPLES / "style" / "Van_Gogh_The_Night_Cafe_background.jpg"
