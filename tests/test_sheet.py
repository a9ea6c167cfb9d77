
import numpy as np
import pytest
from PIL import Image, ImageDraw

from style_tf import images, optimize, paths, sheet, stylize, stylizer
from style_tf.errors import StyleError

C = paths.EXAMPLES / "content"
S = paths.EXAMPLES / "style"


def test_grid_and_cache(tmp_path):
    fast = optimize.OptimizeConfig(steps=2, scales=())
    base = stylize.StylizeConfig(method="optimize", max_dim=32, progress=False, engine=fast)
    contents = [C / "chelsea.png", C / "coffee.png"]
    styles = [S / "kandinky.png"]
    sweep = sheet.parse_sweep("style_weight=1e-3,1e-1", "optimize")
    out = sheet.make_sheet(contents, styles, base, sweep, tmp_path / "sheet.png", tmp_path / "cache")
    img = Image.open(out)
    cols = 1 + 2  # Head column + 2 sweep values.
    heights = [images.load_image(p, max_dim=32).shape[0] for p in styles + contents]  # Each row's.
    assert img.size == (sheet.MARGIN + cols * (32 + sheet.MARGIN),
                        sheet.MARGIN + sum(h + sheet.LABEL_HEIGHT + sheet.MARGIN for h in heights))
    cached = sorted((tmp_path / "cache").iterdir())
    assert len(cached) == 8  # 4 cells x (png + json)
    stamps = {p: p.stat().st_mtime_ns for p in cached}
    sheet.make_sheet(contents, styles, base, sweep, tmp_path / "sheet2.png", tmp_path / "cache")
    assert {p: p.stat().st_mtime_ns for p in cached} == stamps  # Reused, not recomputed.


def test_rows_as_tall_as_their_tallest_image():
    wide, half, white = np.zeros((10, 40, 3)), np.zeros((20, 40, 3)), np.ones((40, 40, 3))
    img = sheet.compose([[(wide, "a"), (half, "b")]], [wide], [(white, "s1"), (None, "s2")], cell=40)
    m, label = sheet.MARGIN, sheet.LABEL_HEIGHT
    assert img.size == (m + 3 * (40 + m), m + (40 + label + m) + (20 + label + m))
    pixels = np.asarray(img)
    top = m + 40 + label + m  # The content row starts here; its tallest image is 20 high.
    x = m + 2 * (40 + m)  # The 20x40 cell.
    assert pixels[top:top + 20, x:x + 40].max() == 0  # The black image fills the row's height,
    assert pixels[top + 20:top + 22, x:x + 40].min() == 255  # then white, then its label.
    assert pixels[top + 20:top + label, x:x + 40].min() == 0


@pytest.mark.parametrize("cell", [16, 40, 96])
def test_labels_stay_in_their_cell_at_small_cell_sizes(cell):
    label = "style 0.123  content 0.45\nssim 0.87  12.3 s"  # As run_cell writes them.
    title = "Van_Gogh_The_Night_Cafe_back\nstyle_weight=0.001"
    black = np.zeros((cell, cell, 3))
    img = sheet.compose([[(black, label), (black, label)]], [black], [(None, title), (None, title)],
                        cell=cell)
    dark = np.asarray(img.convert("L")) < 128
    m, height = sheet.MARGIN, sheet.LABEL_HEIGHT
    for col in range(3):  # Nothing in the margins between columns: no label runs into the next.
        x = m + col * (cell + m)
        assert not dark[:, x - m:x].any() and not dark[:, x + cell:x + cell + m].any(), col
    bands = [(m, m + height), (2 * m + height + cell, 2 * m + 2 * height + cell)]  # Below each row.
    for top, bottom in bands:
        assert not dark[bottom:bottom + m].any()  # Nor into the next row.
        for col in (1, 2):  # Every label shows something.
            x = m + col * (cell + m)
            assert dark[top:bottom, x:x + cell].any(), (top, col)
    text, font = sheet.fit_label(ImageDraw.Draw(img), label, 254, height - 3)
    assert (text, font.size) == (label, sheet.FONT_SIZE)  # Wide cells keep the full label.


def test_sweep_parsing():
    assert sheet.parse_sweep("alpha=0,0.5,1", "adain") == ("alpha", [0.0, 0.5, 1.0])
    assert sheet.parse_sweep("steps=10,20", "optimize") == ("steps", [10, 20])
    assert sheet.parse_sweep(None, "adain") == (None, [None])
    with pytest.raises(StyleError, match="sweep"):
        sheet.parse_sweep("nonsense=1", "adain")
    with pytest.raises(StyleError, match="whole number"):
        sheet.parse_sweep("steps=a", "optimize")
    with pytest.raises(StyleError, match="a setting of --method=optimize"):
        sheet.parse_sweep("alpha=0,1", "optimize")  # Of the other engine: would change nothing.
    config = sheet.cell_config(stylize.StylizeConfig(), "alpha", 0.25)
    assert config.engine.alpha == 0.25
    precision = sheet.cell_config(stylize.StylizeConfig(method="optimize"), "precision", "float32")
    assert precision.engine.precision == "float32"  # A setting both engines have reaches the engine.
    assert sheet.cell_config(precision, "max_dim", 64).max_dim == 64


def test_cache_key_follows_the_decoder_file(tmp_path):
    first, second = tmp_path / "a.weights.h5", tmp_path / "b.weights.h5"
    first.write_bytes(b"one decoder")
    second.write_bytes(b"another decoder")
    configs = [stylize.StylizeConfig(method="adain", engine=stylizer.AdainConfig(decoder_weights=str(p)))
               for p in (first, second, first)]
    keys = [sheet._key(C / "chelsea.png", S / "kandinky.png", c) for c in configs]
    assert keys[0] != keys[1] and keys[0] == keys[2]
    missing = stylize.StylizeConfig(method="adain",
                                    engine=stylizer.AdainConfig(decoder_weights=str(tmp_path / "no")))
    with pytest.raises(StyleError, match="decoder weights not found"):
        sheet._key(C / "chelsea.png", S / "kandinky.png", missing)


def test_adain_cells_share_one_stylizer(tmp_path):
    base = stylize.StylizeConfig(method="adain", max_dim=32, progress=False)
    stylizer._load.cache_clear()
    sheet.make_sheet([C / "chelsea.png", C / "coffee.png"], [S / "kandinky.png"], base,
                     sheet.parse_sweep("alpha=0.5,1", "adain"), tmp_path / "sheet.png", tmp_path / "cache")
    info = stylizer._load.cache_info()
    assert (info.misses, info.hits) == (1, 3)  # Four cells, the models built once.
