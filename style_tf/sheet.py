"""`python -m style_tf.sheet`: a labelled contact sheet of contents x styles (x a sweep).

    python -m style_tf.sheet --contents examples/content --styles examples/style --method=adain
    python -m style_tf.sheet --contents a.jpg --styles s.jpg --sweep style_weight=1e-3,1e-2,1e-1

Contents run down, styles (times sweep values) across; each cell is stylized through
`stylize()`, measured with metrics.py and labelled with its style and content distances and
time. Cells are cached by (content, style, settings), so asking again reuses them.
"""

from style_tf import cli  # noqa: I001 - first: silences TensorFlow's start-up

import dataclasses
import hashlib
import json
import typing
from pathlib import Path

import numpy as np
from absl import flags
from PIL import Image, ImageDraw, ImageFont
from tqdm import tqdm

from style_tf import images, metrics, paths, stylize
from style_tf.errors import StyleError, user_errors_exit_2

LABEL_HEIGHT = 34
MARGIN = 4
FONT_SIZE = 12  # Labels at cells wide enough for them; narrower cells get smaller text,
MIN_FONT_SIZE = 7  # down to this, then lines cut short.


def _define_flags() -> None:
    flags.DEFINE_list("contents", [str(paths.EXAMPLES / "content")], "Content files or folders.")
    flags.DEFINE_list("styles", [str(paths.EXAMPLES / "style")], "Style files or folders.")
    flags.DEFINE_string("sweep", None, "name=v1,v2,... : one setting swept across columns.")
    flags.DEFINE_integer("cell", None, "Longest side of each image as shown (default max_dim).")
    flags.DEFINE_string("output", "sheet.png", "The contact sheet PNG.")
    flags.DEFINE_string("cache", ".sheet_cache", "Folder of cached cells.")
    # Every setting of style_tf.run but what the sheet decides per cell.
    cli.define_flags(stylize.StylizeConfig, *(e.Config for e in stylize.ENGINES.values()),
                     defaults={"max_dim": 256}, exclude=PER_CELL)


PER_CELL = ("content", "style", "style_weights", "style_masks", "output", "progress")


def expand(paths: list[str]) -> list[Path]:
    """Files, with folders replaced by their sorted files."""
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            out += images.list_images(p)
        elif p.is_file():
            out.append(p)
        else:
            raise StyleError(f"{p}: no such file or folder")
    if not out:
        raise StyleError(f"no images in {', '.join(paths)}")
    return out


def parse_sweep(text: str | None, method: str) -> tuple[str | None, list]:
    """"alpha=0,0.5,1" -> ("alpha", [0.0, 0.5, 1.0]): a setting of `method`'s engine or of
    StylizeConfig, its values typed like the config field.

    Raises:
      StyleError: not name=v1,v2, a name that is not such a setting, or a value of another type.
    """
    if not text:
        return None, [None]
    name, _, values = text.partition("=")
    fields = sweepable(method)
    if name not in fields or not values:
        raise StyleError(f"--sweep: {text!r} is not name=v1,v2 with name a setting of --method={method}: "
                         f"{', '.join(sorted(fields))}")
    return name, [cli.parse_value(fields[name], v, f"sweep {name}") for v in values.split(",")]


def sweepable(method: str) -> dict[str, type]:
    """{setting: type}: the scalar settings of StylizeConfig and of `method`'s engine that a
    cell can vary (all but those a field marks `metadata={"sweep": False}` and PER_CELL)."""
    out = {}
    for cls in (stylize.StylizeConfig, stylize.ENGINES[method].Config):
        hints = typing.get_type_hints(cls)
        for f in cli.flag_fields(cls):
            if hints[f.name] in (bool, int, float, str) and f.metadata.get("sweep", True) \
                    and cli.flag_name(f) not in PER_CELL + ("method",):
                out[f.name] = hints[f.name]
    return out


def cell_config(base: stylize.StylizeConfig, name: str | None, value) -> stylize.StylizeConfig:
    """`base` with the swept setting `name` (of StylizeConfig or of its engine) set to `value`."""
    if name is None:
        return base
    if name in {f.name for f in dataclasses.fields(base)}:
        return dataclasses.replace(base, **{name: value})
    return dataclasses.replace(base, engine=dataclasses.replace(base.engine, **{name: value}))


def _key(content: Path, style: Path, config: stylize.StylizeConfig) -> str:
    """Identifies a cell: its images' bytes, the settings, and what the engine computes with."""
    digest = hashlib.sha256()
    for p in (content, style):
        digest.update(hashlib.sha256(p.read_bytes()).digest())
    settings = dataclasses.replace(config, content="", styles=("",), output="", progress=False)
    digest.update(repr(settings).encode())
    digest.update(config.engine.fingerprint().encode())  # A retrained decoder, what "auto" chose.
    return digest.hexdigest()[:20]


def run_cell(content: Path, style: Path, config: stylize.StylizeConfig, cache: Path, model):
    """Stylizes (or reuses) one cell; returns (image, label text)."""
    key = _key(content, style, config)
    png, meta = cache / f"{key}.png", cache / f"{key}.json"
    if not (png.is_file() and meta.is_file()):
        cfg = dataclasses.replace(config, content=str(content), styles=(str(style),), output=str(png),
                                  progress=False)
        result = stylize.stylize(cfg)
        report = metrics.evaluate(model, images.load_image(content, max_dim=config.max_dim),
                                  images.load_image(style, max_dim=config.max_dim), images.load_image(png))
        with images.atomic_path(meta) as tmp:
            Path(tmp).write_text(json.dumps({**dict(report.rows()), "seconds": result.seconds}))
    info = json.loads(meta.read_text())
    label = (f"style {info[config.engine.STYLE_MEASURE]:.3f}  content {info['content_relative']:.2f}\n"
             f"ssim {info['ssim']:.2f}  {info['seconds']:.1f} s")
    return images.load_image(png), label


def compose(rows: list[list[tuple[np.ndarray, str]]], row_heads: list[np.ndarray],
            col_heads: list[tuple[np.ndarray | None, str]], cell: int) -> Image.Image:
    """The grid: a header row (style thumbnails + titles), a head column (contents), cells.

    Columns are `cell` wide; each row is as tall as its tallest image, labels right under it,
    each within its cell (`fit_label`)."""

    def thumb(image):
        if image is None:
            return None
        return Image.fromarray(np.uint8(np.clip(images.resize(image, max_dim=cell), 0, 1) * 255))

    table = [[(None, "")] + [(thumb(image), title) for image, title in col_heads]]
    table += [[(thumb(head), "")] + [(thumb(image), label) for image, label in cells]
              for head, cells in zip(row_heads, rows)]
    heights = [max((t.height for t, _ in line if t is not None), default=0) for line in table]
    sheet = Image.new("RGB", (MARGIN + (cell + MARGIN) * len(table[0]),
                              MARGIN + sum(h + LABEL_HEIGHT + MARGIN for h in heights)), "white")
    draw = ImageDraw.Draw(sheet)
    y = MARGIN
    for line, height in zip(table, heights):
        for col, (t, text) in enumerate(line):
            x = MARGIN + col * (cell + MARGIN)
            if t is not None:
                sheet.paste(t, (x + (cell - t.width) // 2, y + (height - t.height) // 2))
            text, font = fit_label(draw, text, cell - 2, LABEL_HEIGHT - 3)
            draw.multiline_text((x + 2, y + height + 3), text, fill="black", font=font, spacing=2)
        y += height + LABEL_HEIGHT + MARGIN
    return sheet


def fit_label(draw: ImageDraw.ImageDraw, text: str, width: int, height: int):
    """(text, font) that fit a `width` x `height` box: `text` at the largest size from
    FONT_SIZE down to MIN_FONT_SIZE, else at MIN_FONT_SIZE with each line cut to the width
    (ending in "…") and the lines below the height left out. Never wider than the box, so a
    label does not run into the next cell's."""

    def fits(candidate, font):
        left, top, right, bottom = draw.multiline_textbbox((0, 0), candidate, font=font, spacing=2)
        return right <= width and bottom <= height

    for size in range(FONT_SIZE, MIN_FONT_SIZE - 1, -1):
        font = ImageFont.load_default(size=size)
        if fits(text, font):
            return text, font
    lines = []
    for line in text.splitlines():
        for end in range(len(line), 0, -1):
            candidate = line if end == len(line) else line[:end].rstrip() + "…"
            if fits("\n".join(lines + [candidate]), font):
                lines.append(candidate)
                break
        else:  # Not one character fits, or no room below: the rest is left out.
            break
    return "\n".join(lines), font


def make_sheet(contents: list[Path], styles: list[Path], base: stylize.StylizeConfig,
               sweep: tuple[str | None, list], output: Path, cache: Path, cell: int | None = None) -> Path:
    """Runs every cell (with a progress bar) and writes the labelled sheet atomically, each
    image shown at `cell` pixels (default: as stylized, `base.max_dim`)."""
    name, values = sweep
    columns = [(s, v) for s in styles for v in values]
    cache.mkdir(parents=True, exist_ok=True)
    model = metrics.feature_model()
    style_images = {s: images.load_image(s, max_dim=base.max_dim) for s in styles}
    rows, heads = [], []
    with tqdm(total=len(contents) * len(columns), desc="sheet", unit="cell", disable=None) as bar:
        for content in contents:
            heads.append(images.load_image(content, max_dim=base.max_dim))
            row = []
            for style, value in columns:
                row.append(run_cell(content, style, cell_config(base, name, value), cache, model))
                bar.update(1)
            rows.append(row)
    col_heads = [(style_images[s], s.stem[:28] + ("" if name is None else f"\n{name}={v:g}" if
                                                  isinstance(v, float) else f"\n{name}={v}"))
                 for s, v in columns]
    sheet = compose(rows, heads, col_heads, cell or base.max_dim)
    with images.atomic_path(output) as tmp:
        sheet.save(tmp, format="PNG")
    return output


@user_errors_exit_2
def main(argv) -> int:
    del argv
    f = flags.FLAGS
    base = cli.stylize_config(f, progress=False)
    out = make_sheet(expand(f.contents), expand(f.styles), base, parse_sweep(f.sweep, f.method),
                     Path(f.output), Path(f.cache), f.cell)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    cli.run(main, _define_flags)
