"""`python -m style_tf.run`: flags -> StylizeConfig -> stylize(). Nothing else.

With no flags it stylizes the bundled example photo with a bundled painting into
./stylized.png. Exit status: 0 done, 1 some files of a folder failed or the loss stayed
non-finite (the last finite image was saved), 2 user error (one line on stderr, nothing
written), 130 interrupted (the current image was saved).
"""

from style_tf import cli  # noqa: I001 - first: silences TensorFlow's start-up

import os
import sys

from absl import flags, logging

from style_tf import optimize, stylize, vgg
from style_tf.errors import StyleError, user_errors_exit_2

_D = stylize.StylizeConfig()
_O = optimize.OptimizeConfig()
_A = stylize.AdainConfig()


def _define_flags() -> None:
    f = flags
    f.DEFINE_string("content", _D.content, "Content image, or a folder of them.")
    f.DEFINE_list("style", list(_D.styles), "Style image(s), comma-separated.")
    f.DEFINE_list("style_weights", [], "Blend weights, one per style (default equal).")
    f.DEFINE_list("style_masks", [], "Mask image per style; white = where that style applies.")
    f.DEFINE_string("output", _D.output, "Output file, or folder for a folder of contents.")
    f.DEFINE_enum("method", _D.method, ["optimize", "adain"], "Engine.")
    f.DEFINE_integer("max_dim", _D.max_dim, "Longest side of the output.")
    f.DEFINE_enum("preserve_color", _D.preserve_color, ["none", "luminance", "histogram"],
                  "Keep the content's colours.")
    f.DEFINE_integer("log_every", _D.log_every, "Steps between log lines (0: none).")
    f.DEFINE_integer("save_every", _D.save_every, "Steps between snapshot images (0: none).")
    f.DEFINE_bool("plot", _D.plot, "Write <output>_loss.png with the loss curve.")
    f.DEFINE_bool("progress", _D.progress, "Show a progress bar.")
    f.DEFINE_bool("resume", _D.resume, "Continue an interrupted optimisation (<output>.resume.npz).")
    # optimize
    f.DEFINE_enum("network", _O.network, ["vgg19", "vgg16"], "Feature network.")
    f.DEFINE_string("vgg_weights", _O.vgg_weights, "bundled, imagenet, or a path to .h5/.npz.")
    f.DEFINE_enum("pooling", _O.pooling, ["max", "avg"], "VGG pooling.")
    f.DEFINE_list("content_layers", [_layer_spec(_O.content_layers)], "Layers, optional name:weight.")
    f.DEFINE_list("style_layers", _layer_spec(_O.style_layers).split(","), "Layers, optional name:weight.")
    f.DEFINE_float("content_weight", _O.content_weight, "Content loss weight.")
    f.DEFINE_float("style_weight", _O.style_weight, "Style loss weight.")
    f.DEFINE_float("tv_weight", _O.tv_weight, "Total variation weight.")
    f.DEFINE_enum("optimizer", _O.optimizer, ["lbfgs", "adam"], "Optimiser.")
    f.DEFINE_integer("steps", _O.steps, "Iterations per scale.")
    f.DEFINE_float("learning_rate", _O.learning_rate, "Adam learning rate.")
    f.DEFINE_string("init", _O.init, "content, noise, style, or an image path.")
    f.DEFINE_integer("seed", _O.seed, "Random seed.")
    f.DEFINE_float("style_scale", _O.style_scale, "Style size relative to the output.")
    f.DEFINE_list("scales", [str(s) for s in _O.scales], "Coarse sizes run before max_dim.")
    f.DEFINE_enum("precision", _O.precision, list(vgg.PRECISIONS),
                  "Network arithmetic (both engines); auto = bfloat16 where the CPU has it natively.")
    # adain
    f.DEFINE_float("alpha", _A.alpha, "AdaIN content-style trade-off, 0..1.")
    f.DEFINE_string("decoder_weights", _A.decoder_weights, "bundled, or a decoder .weights.h5.")
    f.DEFINE_integer("face_size", _A.face_size,
                     "AdaIN: faces below 0.8x this (px) are stylized again enlarged to it; 0 = off.")


def _layer_spec(layers) -> str:
    return ",".join(f"{name}:{weight:g}" for name, weight in layers)


def parse_layers(items: list[str], flag: str) -> tuple[tuple[str, float], ...]:
    """["block1_conv1:0.5", "block2_conv1"] -> (("block1_conv1", 0.5), ("block2_conv1", 1.0))."""
    out = []
    for item in items:
        name, _, weight = item.partition(":")
        try:
            out.append((name.strip(), float(weight) if weight else 1.0))
        except ValueError:
            raise StyleError(f"--{flag}: {item!r} is not name or name:weight") from None
    return tuple(out)


def _floats(items: list[str], flag: str, kind=float) -> tuple:
    try:
        return tuple(kind(x) for x in items)
    except ValueError:
        raise StyleError(f"--{flag}: {','.join(items)!r} is not a list of numbers") from None


# Flags only one engine reads: given with the other, they would be silently ignored.
ENGINE_FLAGS = {
    "optimize": ("network", "vgg_weights", "pooling", "content_layers", "style_layers",
                 "content_weight", "style_weight", "tv_weight", "optimizer", "steps",
                 "learning_rate", "init", "seed", "style_scale", "scales", "log_every",
                 "save_every", "plot", "resume"),
    "adain": ("alpha", "decoder_weights", "face_size"),
}
# Flags only one optimiser of the optimize engine reads, for the same reason.
OPTIMIZER_FLAGS = {"adam": ("learning_rate",)}

# Flags that take image files (a folder is for --content only).
IMAGE_FILE_FLAGS = ("style", "style_masks")


def config_from_flags(f) -> stylize.StylizeConfig:
    """Builds the frozen config; every check raises StyleError."""
    config = _config(f)
    for name in IMAGE_FILE_FLAGS:
        folders = [item for item in f[name].value if os.path.isdir(item)]
        if folders:
            raise StyleError(f"--{name}: {folders[0]} is a folder; --{name} takes image files "
                             "(comma-separated)")
    _refuse_unread(f, "method", ENGINE_FLAGS)
    _refuse_unread(f, "optimizer", OPTIMIZER_FLAGS)
    return config


def _refuse_unread(f, choice: str, table: dict[str, tuple[str, ...]]) -> None:
    """Refuses flags given for another value of `--choice` than the one in use (`table`:
    {value: the flags only it reads})."""
    for value, names in table.items():
        given = ["--" + n for n in names if f[n].present]
        if given and f[choice].value != value:
            raise StyleError(f"{', '.join(given)}: {'options' if len(given) > 1 else 'an option'} "
                             f"of --{choice}={value}, not of {f[choice].value}")


def _config(f) -> stylize.StylizeConfig:
    engine = optimize.OptimizeConfig(
        network=f.network, vgg_weights=f.vgg_weights, pooling=f.pooling,
        content_layers=parse_layers(f.content_layers, "content_layers"),
        style_layers=parse_layers(f.style_layers, "style_layers"),
        content_weight=f.content_weight, style_weight=f.style_weight, tv_weight=f.tv_weight,
        optimizer=f.optimizer, steps=f.steps, learning_rate=f.learning_rate, init=f.init,
        seed=f.seed, style_scale=f.style_scale, scales=_floats(f.scales, "scales", int),
        precision=f.precision)
    return stylize.StylizeConfig(
        content=f.content, styles=tuple(f.style), style_weights=_floats(f.style_weights, "style_weights"),
        style_masks=tuple(f.style_masks), output=f.output, method=f.method, max_dim=f.max_dim,
        preserve_color=f.preserve_color, log_every=f.log_every, save_every=f.save_every,
        plot=f.plot, progress=f.progress, resume=f.resume, optimize=engine,
        adain=stylize.AdainConfig(alpha=f.alpha, decoder_weights=f.decoder_weights,
                                  precision=f.precision, face_size=f.face_size))


@user_errors_exit_2
def main(argv) -> int:
    if len(argv) > 1:
        print(f"error: unexpected arguments {argv[1:]} (flags start with --)", file=sys.stderr)
        return 2
    result = stylize.stylize(config_from_flags(flags.FLAGS))
    for path in result.written:
        print(f"wrote {path.resolve()}")
    tried = len(result.failed) + len(result.written)
    if result.failed and tried > 1:  # Each failure was logged as it happened: here only a count.
        print(f"failed: {len(result.failed)} of {tried} files (errors above)", file=sys.stderr)
    if result.interrupted:  # Not "done": the engine said at which step it stopped.
        print("interrupted: the current image was saved", file=sys.stderr)
        return 130
    logging.info("done in %.1f s", result.seconds)
    return 1 if result.failed else 0


if __name__ == "__main__":
    cli.run(main, _define_flags)
