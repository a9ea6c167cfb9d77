"""`python -m export.savedmodel`: a SavedModel called like the TF-Hub arbitrary stylization module.

    module = tensorflow_hub.load("exported/adain_savedmodel")
    outputs = module(content_image, style_image)          # float32 [B, H, W, 3] in [0, 1]
    stylized = outputs[0]
    stylized = module(content_image, style_image, alpha)[0]  # alpha: float32 scalar, 0..1

Any image size (the content is resized to a multiple of 8 inside and back). The
`serving_default` signature takes `content_image`, `style_image` and returns
`stylized_image`, for `hub.KerasLayer(path, signature="serving_default",
output_key="stylized_image")` called with a dict of both images.

The folder is `--output_dir`, by default `exported/adain_savedmodel` in the current folder
(its parents made if missing).
"""

from style_tf import cli  # noqa: I001 - first: silences TensorFlow's start-up

import os
import shutil
import tempfile
from pathlib import Path

import tensorflow as tf
from absl import flags

from export import signatures as sig
from export.tflite import DEFAULT_OUTPUT_DIR, Network, output_folder
from style_tf import adain
from style_tf.errors import user_errors_exit_2

DEFAULT_PATH = str(Path(DEFAULT_OUTPUT_DIR) / "adain_savedmodel")
IMAGE = tf.TensorSpec([None, None, None, 3], tf.float32)


class StylizationModule(tf.Module):
    """content, style (, alpha) -> [stylized]; the weights are saved as variables."""

    def __init__(self, net: Network):
        super().__init__()
        self.encoder, self.decoder = net.encoder, net.decoder

    def _stylize(self, content_image, style_image, alpha):
        vector = adain.style_vector(self.encoder(style_image)[adain.BOTTLENECK])
        size = tf.shape(content_image)[1:3]
        size8 = tf.maximum(8, tf.cast(tf.round(tf.cast(size, tf.float32) / 8.0), tf.int32) * 8)
        x = tf.image.resize(content_image, size8, method="bicubic", antialias=True)
        out = tf.cond(tf.reduce_min(size8) > adain.BORDER,  # Mirroring needs a wider image.
                      lambda: adain.transform(self.encoder, self.decoder, x, vector, alpha),
                      lambda: adain.transform(self.encoder, self.decoder, x, vector, alpha, border=0))
        return tf.clip_by_value(tf.image.resize(out, size, method="bicubic", antialias=True), 0.0, 1.0)

    @tf.function(input_signature=[IMAGE, IMAGE])
    def __call__(self, content_image, style_image):
        return [self._stylize(content_image, style_image, 1.0)]

    @tf.function(input_signature=[IMAGE, IMAGE, tf.TensorSpec([], tf.float32)])
    def with_alpha(self, content_image, style_image, alpha):
        return [self._stylize(content_image, style_image, alpha)]

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name=sig.CONTENT_IMAGE),
                                  tf.TensorSpec([None, None, None, 3], tf.float32, name=sig.STYLE_IMAGE)])
    def serving(self, content_image, style_image):
        return {sig.STYLIZED_IMAGE: self._stylize(content_image, style_image, 1.0)}


def export(decoder_weights: str, output_dir: str) -> Path:
    """Writes the SavedModel to a temporary folder beside `output_dir` (whose parents are made
    if missing), then swaps it in."""
    out = Path(output_dir)
    output_folder(out.parent)
    module = StylizationModule(Network(decoder_weights))
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        tf.saved_model.save(module, str(tmp), signatures={"serving_default": module.serving})
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old)
        else:
            os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out


def _define_flags() -> None:
    flags.DEFINE_string("decoder_weights", str(adain.decoder_path()), "Decoder .weights.h5.")
    flags.DEFINE_string("output_dir", DEFAULT_PATH, "SavedModel folder (replaced if it exists; "
                        "its parents made if missing).")


@user_errors_exit_2
def main(argv) -> int:
    del argv
    out = export(flags.FLAGS.decoder_weights, flags.FLAGS.output_dir)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    cli.run(main, _define_flags)
