"""`python -m export.tflite`: the AdaIN network (or, `--method mobile`, the phone-class
student of style_tf/student.py) as TFLite models for Android.

Two models per variant (float32, float16 weights, int8 full-integer with float in/out):
`adain_predict_<variant>.tflite` (style image -> style vector, once per style) and
`adain_transform_<variant>.tflite` (content image, style vector, alpha -> stylized image);
the student's are `student_predict_<variant>.tflite` and `student_transform_<variant>.tflite`,
with the same signatures (its style vector is shorter).

Conversion route: the Keras network is wrapped in tf.functions, its variables are frozen
into constants (`convert_variables_to_constants_v2`; converting unfrozen Keras 3 variables
gave all-NaN models without an error), the frozen functions are saved as a SavedModel with
named signatures, and that is converted. Every file is written atomically, and
`adain_tflite.json` in the same folder records the decoder they came from and each file's
size and sha256 (the tests check the committed models against the bundled weights with it;
the student's folder record is `student_tflite.json`).

The files go to `--output_dir`, by default `exported/` in the current folder (made if
missing); only `--output_dir models` replaces the models the repository ships.
"""

from style_tf import cli  # noqa: I001 - first: silences TensorFlow's start-up

import json
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import tensorflow as tf
from absl import flags, logging
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from export import signatures as sig
from style_tf import adain, images, student, vgg
from style_tf.errors import StyleError, user_errors_exit_2
from style_tf.paths import EXAMPLES
from style_tf.weights import sha256_file

MANIFEST = sig.manifest_file("adain")
DEFAULT_OUTPUT_DIR = "exported"  # Relative to the current folder; git ignores it at a checkout's root.


class Network:
    """Encoder and decoder with the two exported computations as float32 functions.

    The encoder computes what the Keras one does, with the caffe preprocessing (RGB -> BGR,
    x255, minus the means) folded into the first convolution: quantised to int8, those three
    input ops alone were far off (benchmarks/RESULTS.md, "Export/TFLite"), and folded there is
    nothing left to quantise but the convolution. The image is padded with the mean colour, which is
    what the Keras model's zero padding of mean-subtracted pixels amounts to.
    """

    def __init__(self, weights: str | None = None, method: str = "adain"):
        """Args: weights: the decoder's (adain) or the student's (mobile) `.weights.h5`, None:
        the bundled one; method: "adain" or "mobile"."""
        if method == "mobile":
            self.encoder, self.decoder = student.load(weights or "bundled")
        elif method == "adain":
            self.encoder = adain.encoder(layers=(adain.BOTTLENECK,))
            self.decoder = adain.load_decoder(weights or adain.decoder_path())
        else:
            raise StyleError(f"unknown method {method!r} (use adain or mobile)")
        self.method = method
        layers = [layer for layer in self.encoder.layers if layer.name.startswith("block")]
        self._scale = 1.0 / adain.FEATURE_SCALE[adain.BOTTLENECK]
        w, b = layers[0].get_weights()
        mean_bgr = np.asarray(vgg.CAFFE_MEAN_BGR, np.float32)
        self._first = (tf.constant(w[:, :, ::-1, :] * 255.0),
                       tf.constant(b - np.einsum("hwio,i->o", w, mean_bgr)))
        self._mean_rgb = tf.constant(mean_bgr[::-1] / 255.0)
        self._rest = layers[1:]

    def features(self, rgb):
        """{block4_conv1: features} of (B, H, W, 3) RGB in [0, 1], as the Keras encoder's."""
        x = tf.pad(rgb - self._mean_rgb, [[0, 0], [1, 1], [1, 1], [0, 0]]) + self._mean_rgb
        x = tf.nn.relu(tf.nn.conv2d(x, self._first[0], 1, "VALID") + self._first[1])
        for layer in self._rest:
            x = layer(x)
        return {adain.BOTTLENECK: x * self._scale}

    def predict(self, style_image):
        return adain.style_vector(self.features(style_image)[adain.BOTTLENECK])

    def transform(self, content_image, style_vector, alpha):
        # Without the engine's mirrored border: with it the int8 models fail their PSNR bar at
        # small sizes, for reasons not yet understood (benchmarks/RESULTS.md, "Export/TFLite").
        return adain.transform(self.features, self.decoder, content_image, style_vector, alpha,
                               border=0)


def frozen_module(net: Network, content_size: int, style_size: int) -> tf.Module:
    """A tf.Module whose `predict` and `transform` hold the weights as constants."""
    table = sig.signature_table(content_size, style_size, net.method)
    specs = {key: [tf.TensorSpec(shape, tf.float32, name=name) for name, shape in inputs.items()]
             for key, (inputs, _) in table.items()}
    raw_predict = tf.function(net.predict, input_signature=specs[sig.PREDICT])
    raw_transform = tf.function(net.transform, input_signature=specs[sig.TRANSFORM])
    frozen_predict = convert_variables_to_constants_v2(raw_predict.get_concrete_function())
    frozen_transform = convert_variables_to_constants_v2(raw_transform.get_concrete_function())
    module = tf.Module()

    @tf.function(input_signature=specs[sig.PREDICT])
    def predict(style_image):
        return {sig.STYLE_VECTOR: frozen_predict(style_image)[0]}

    @tf.function(input_signature=specs[sig.TRANSFORM])
    def transform(content_image, style_vector, alpha):
        return {sig.STYLIZED_IMAGE: frozen_transform(content_image, style_vector, alpha)[0]}

    module.predict, module.transform = predict, transform
    return module


def calibration_images(folders: list[str], size: int, limit: int = 24) -> list[np.ndarray]:
    """Up to `limit` images from `folders`, centre-cropped squares resized to `size`."""
    out = []
    for folder in folders:
        for path in sorted(Path(folder).rglob("*")):
            if len(out) >= limit:
                return out
            if path.is_file():
                try:
                    out.append(images.center_square(images.load_image(path), size))
                except StyleError:
                    continue
    return out


def output_folder(path: str | os.PathLike) -> Path:
    """`path` as a folder, made with its parents if missing."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise StyleError(f"{path}: exists and is not a folder") from None
    except OSError as e:
        raise StyleError(f"{path}: cannot make the output folder ({e.strerror})") from None
    return path


# TFLite ops kept in float in the int8 models: quantised, the channel means and standard
# deviations of AdaIN (MEAN of squares spanning 1e0..1e7) put the style vector far off
# (benchmarks/RESULTS.md, "Export/TFLite").
FLOAT_OPS = ("MEAN", "SQUARED_DIFFERENCE", "SUB", "MUL", "ADD", "SQRT", "RSQRT", "DIV",
             "CONCATENATION", "STRIDED_SLICE", "MINIMUM", "MAXIMUM", "PAD")


def convert(saved_model_dir: str, key: str, variant: str, representative=None) -> bytes:
    """Converts one signature of the frozen SavedModel to a TFLite flatbuffer."""
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir, signature_keys=[key])
    if variant == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        # Integer kernels wherever they exist; float for the rest (see BUILD.md), float in/out.
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                               tf.lite.OpsSet.TFLITE_BUILTINS]
        # Selective quantisation: convolutions, pooling and upsampling in int8; the ops of
        # FLOAT_OPS (AdaIN statistics, alpha blend, input padding, clipping) stay float.
        options = tf.lite.experimental.QuantizationDebugOptions(denylisted_ops=list(FLOAT_OPS))
        # The debugger runs the model in tf.lite.Interpreter, which warns on every use that it
        # is deprecated (verify and the app use LiteRT), and the quantiser writes an LLVM debug
        # line ("fully_quantize: 0, ...") that no log level reaches: shown only on a failure.
        with warnings.catch_warnings(), cli.native_stderr_captured():
            warnings.filterwarnings("ignore", r"\s*Warning: tf\.lite\.Interpreter is deprecated",
                                    UserWarning)
            debugger = tf.lite.experimental.QuantizationDebugger(
                converter=converter, debug_dataset=representative, debug_options=options)
            return debugger.get_nondebug_quantized_model()
    elif variant != "float32":
        raise StyleError(f"unknown variant {variant!r} (use {', '.join(sig.VARIANTS)})")
    return converter.convert()


def export(weights: str | None, output_dir: str, content_size: int = sig.CONTENT_SIZE,
           style_size: int = sig.STYLE_SIZE, variants=sig.VARIANTS,
           calibration_dirs: list[str] | None = None, method: str = "adain") -> list[Path]:
    """Writes the predict and transform models of each variant into `output_dir` (made if
    missing), with the folder's manifest; returns their paths.

    Args:
      weights: the network's `.weights.h5` (`Network`); None: the bundled one.
      method: "adain" (the VGG network) or "mobile" (the student).
    """
    for v in variants:
        if v not in sig.VARIANTS:
            raise StyleError(f"unknown variant {v!r} (use {', '.join(sig.VARIANTS)})")
    if content_size % 8 or content_size < 16 or style_size < 16:
        raise StyleError("content_size must be a multiple of 8 and sizes >= 16")
    output_dir = output_folder(output_dir)
    net = Network(weights, method)
    module = frozen_module(net, content_size, style_size)
    folders = calibration_dirs or [str(EXAMPLES / "style"), str(EXAMPLES / "content")]
    styles = calibration_images(folders, style_size)
    contents = calibration_images(folders[::-1], content_size)
    vectors = [net.predict(s[None]) for s in styles]

    def predict_data():
        for s in styles:
            yield {sig.STYLE_IMAGE: s[None]}

    def transform_data():
        for i, c in enumerate(contents):
            alpha = np.array([1.0 if i % 2 == 0 else 0.5], np.float32)
            yield {sig.CONTENT_IMAGE: c[None], sig.STYLE_VECTOR: np.asarray(vectors[i % len(vectors)]),
                   sig.ALPHA: alpha}

    written = []
    with tempfile.TemporaryDirectory() as tmp:
        tf.saved_model.save(module, tmp, signatures={sig.PREDICT: module.predict,
                                                     sig.TRANSFORM: module.transform})
        for variant in variants:
            for key, data in ((sig.PREDICT, predict_data), (sig.TRANSFORM, transform_data)):
                flat = convert(tmp, key, variant, data)
                path = Path(output_dir) / sig.model_file(key, variant, method)
                with images.atomic_path(path) as part:
                    Path(part).write_bytes(flat)
                logging.info("wrote %s (%d bytes)", path, len(flat))
                written.append(path)
    if method == "mobile":
        source = student.weights_path(weights or "bundled")
    else:
        source = weights or adain.decoder_path()
    write_manifest(output_dir, source, written, sig.manifest_file(method))
    return written


def write_manifest(output_dir: str, weights: str, paths: list[Path], name: str = MANIFEST) -> None:
    """Adds `paths` to the folder's manifest `name`, which is started afresh for other weights
    (`decoder_sha256`: the sha256 of the decoder's, or the student's, weights file)."""
    path = Path(output_dir) / name
    decoder = sha256_file(weights)
    manifest = json.loads(path.read_text()) if path.is_file() else {}
    if manifest.get("decoder_sha256") != decoder:
        manifest = {"decoder_sha256": decoder, "files": {}}
    for p in paths:
        manifest["files"][p.name] = {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
    manifest["files"] = dict(sorted(manifest["files"].items()))
    with images.atomic_path(path) as part:
        Path(part).write_text(json.dumps(manifest, indent=1) + "\n")


def _define_flags() -> None:
    flags.DEFINE_enum("method", "adain", ["adain", "mobile"], "The network: adain (VGG19 encoder and "
                      "our decoder) or mobile (the phone-class student).")
    flags.DEFINE_string("decoder_weights", None, "Decoder .weights.h5 (adain; default: the bundled one).")
    flags.DEFINE_string("student_weights", None, "Student .weights.h5 (mobile; default: the bundled one).")
    flags.DEFINE_string("output_dir", DEFAULT_OUTPUT_DIR, "Folder for the .tflite files, made if "
                        "missing; `models` replaces the shipped ones.")
    flags.DEFINE_integer("content_size", sig.CONTENT_SIZE, "Transform input size (multiple of 8).")
    flags.DEFINE_integer("style_size", sig.STYLE_SIZE, "Predict input size.")
    flags.DEFINE_list("variants", list(sig.VARIANTS), "float32, float16, int8.")
    flags.DEFINE_list("calibration_dirs", [], "Image folders for int8 calibration "
                      "(default: examples/style and examples/content).")


@user_errors_exit_2
def main(argv) -> int:
    del argv
    f = flags.FLAGS
    weights = f.student_weights if f.method == "mobile" else f.decoder_weights
    paths = export(weights, f.output_dir, f.content_size, f.style_size, f.variants,
                   f.calibration_dirs or None, f.method)
    for p in paths:
        print(f"wrote {p} ({os.path.getsize(p) / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    cli.run(main, _define_flags)
