"""`python -m style_tf.evaluate --content C --style S --stylized X [X2 ...] [--json]`.

Prints one table (or JSON) of metrics.py's measures for each stylized image, in a fixed
order and format so runs can be diffed. With `--style2`, also the style similarity of the
two style images. With `--video`, C and X are clips: the warping error (flicker) of each
stylized clip, and the mean style and content measures of its first, middle and last frames
(`metrics.video_report`).
"""

from style_tf import cli  # noqa: I001 - first: silences TensorFlow's start-up

import json
import math

from absl import flags

from style_tf import images, metrics, video
from style_tf.errors import StyleError, user_errors_exit_2


def _define_flags() -> None:
    flags.DEFINE_string("content", None, "Content image.")
    flags.DEFINE_string("style", None, "Style image.")
    flags.DEFINE_list("stylized", [], "Stylized image(s) to measure, comma-separated.")
    flags.DEFINE_string("style2", None, "A second style image: print the style similarity.")
    flags.DEFINE_integer("max_dim", 512, "Images are measured at most this large.")
    flags.DEFINE_bool("json", False, "JSON instead of a table.")
    flags.DEFINE_bool("video", False, "--content and --stylized are clips: warping error and the mean "
                      "measures of the first, middle and last frames.")
    flags.DEFINE_float("start", 0.0, "With --video: seconds into --content where the stylized clips start.")


def table(names: list[str], reports: list[metrics.Report]) -> str:
    width = max(12, *(len(n) for n in names))
    lines = [f"{'metric':<18}" + "".join(f"{n:>{width + 2}}" for n in names)]
    for i, (metric, _) in enumerate(reports[0].rows()):
        lines.append(f"{metric:<18}" + "".join(f"{r.rows()[i][1]:>{width + 2}.4g}" for r in reports))
    return "\n".join(lines)


@user_errors_exit_2
def main(argv) -> int:
    del argv
    f = flags.FLAGS
    if not f.content or not f.style or not (f.stylized or f.style2):
        raise StyleError("--content, --style and --stylized (or --style2) are required")
    if f.video:
        return _video(f)
    content = images.load_image(f.content, max_dim=f.max_dim)
    style = images.load_image(f.style, max_dim=f.max_dim)
    results = [images.load_image(p, max_dim=f.max_dim) for p in f.stylized]
    model = metrics.feature_model()
    reports = [metrics.evaluate(model, content, style, r) for r in results]
    similarity = None
    if f.style2:
        similarity = metrics.style_similarity(model, style, images.load_image(f.style2, max_dim=f.max_dim))
    if f.json:
        # Non-finite values (PSNR of identical images) become null: strict JSON.
        out = {p: {k: v if math.isfinite(v) else None for k, v in r.rows()}
               for p, r in zip(f.stylized, reports)}
        if similarity is not None:
            out["style_similarity"] = similarity
        print(json.dumps(out, indent=2, sort_keys=True))
    else:
        if reports:
            print(table(f.stylized, reports))
        if similarity is not None:
            print(f"style_similarity {similarity:.4g}")
    return 0


def _video(f) -> int:
    """--video: one column per stylized clip."""
    style = images.load_image(f.style, max_dim=f.max_dim)
    for path in [f.content, *f.stylized]:
        video.probe(path)  # A bad clip fails before the model loads.
    model = metrics.feature_model()
    reports = [metrics.video_report(model, f.content, style, p, f.start) for p in f.stylized]
    if f.json:
        print(json.dumps({p: {k: v if math.isfinite(v) else None for k, v in r.items()}
                          for p, r in zip(f.stylized, reports)}, indent=2, sort_keys=True))
        return 0
    width = max(12, *(len(n) for n in f.stylized))
    lines = [f"{'metric':<18}" + "".join(f"{n:>{width + 2}}" for n in f.stylized)]
    for metric in reports[0]:
        lines.append(f"{metric:<18}" + "".join(f"{r[metric]:>{width + 2}.4g}" for r in reports))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    cli.run(main, _define_flags)
