"""Export at a small size into a temporary folder, run in LiteRT, compare with Keras."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from export import savedmodel, tflite, verify
from export import signatures as sig
from style_tf import paths
from style_tf.errors import StyleError
from style_tf.weights import sha256_file

SIZE = 64
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def decoder_file():
    from style_tf import adain

    return str(adain.decoder_path())


@pytest.fixture(scope="module")
def exported(tmp_path_factory, decoder_file):
    """The default output folder of a user's working folder that does not exist yet."""
    out = tmp_path_factory.mktemp("export") / "work" / tflite.DEFAULT_OUTPUT_DIR
    tflite.export(decoder_file, str(out), content_size=SIZE, style_size=SIZE)
    return out


def test_defaults_write_to_the_current_folder_not_the_repository():
    for default in (tflite.DEFAULT_OUTPUT_DIR, savedmodel.DEFAULT_PATH):
        assert not Path(default).is_absolute(), default  # The user's current folder.
        assert not (REPO / default).resolve().is_relative_to(paths.models_dir().resolve()), default
    ignored = (REPO / ".gitignore").read_text().splitlines()
    assert f"/{tflite.DEFAULT_OUTPUT_DIR}/" in ignored  # Run from a checkout, git ignores it.


def test_export_makes_a_missing_nested_folder_and_refuses_a_file(exported, tmp_path):
    models = [sig.model_file(k, v) for k in (sig.PREDICT, sig.TRANSFORM) for v in sig.VARIANTS]
    assert sorted(p.name for p in exported.iterdir()) == sorted([tflite.MANIFEST, *models])
    (tmp_path / "file").write_text("")
    with pytest.raises(StyleError, match="not a folder"):
        tflite.output_folder(tmp_path / "file")


def test_signatures_names_dtypes_shapes(exported):
    table = sig.signature_table(SIZE, SIZE)
    for variant in sig.VARIANTS:
        for key, (inputs, outputs) in table.items():
            runner = verify.interpreter(exported / sig.model_file(key, variant)).get_signature_runner(key)
            got_in, got_out = runner.get_input_details(), runner.get_output_details()
            assert {k: list(v["shape"]) for k, v in got_in.items()} == inputs
            assert {k: list(v["shape"]) for k, v in got_out.items()} == outputs
            assert all(v["dtype"] == np.float32 for v in [*got_in.values(), *got_out.values()])


def test_float_variants_match_keras_and_no_nan(exported, decoder_file):
    rows, measured = verify.verify(str(exported), decoder_file, ("float32", "float16"), repeats=1)
    assert measured.startswith("measured on 3 seeded synthetic image pairs"), measured
    rows = {r["variant"]: r for r in rows}
    assert rows["float32"]["psnr"] >= 40 and rows["float16"]["psnr"] >= 35
    assert all(np.isfinite(r["style_distance"]) for r in rows.values())


def test_int8_passes_its_bar_in_litert_on_the_given_images(exported, decoder_file):
    photos = [paths.EXAMPLES / "content" / "coffee.png", paths.EXAMPLE_CONTENT]
    rows, measured = verify.verify(str(exported), decoder_file, ("int8",), repeats=1, photos=photos,
                                   styles=[paths.EXAMPLE_STYLE])
    assert measured.splitlines() == ["measured on 2 photo + style pair(s):",
                                     f"  {photos[0]} + {paths.EXAMPLE_STYLE}",
                                     f"  {photos[1]} + {paths.EXAMPLE_STYLE}"]
    assert rows[0]["psnr"] >= 25, rows  # The bar of export.verify.
    assert rows[0]["mb"] < 0.5 * sum(p.stat().st_size for p in exported.glob("*float32*")) / 1e6


def test_manifest_records_the_decoder_and_every_file(exported, decoder_file):
    manifest = json.loads((exported / tflite.MANIFEST).read_text())
    assert manifest["decoder_sha256"] == sha256_file(decoder_file)
    files = sorted(p.name for p in exported.glob("*.tflite"))
    assert sorted(manifest["files"]) == files and len(files) == 2 * len(sig.VARIANTS)
    for name, entry in manifest["files"].items():
        assert entry == {"bytes": (exported / name).stat().st_size, "sha256": sha256_file(exported / name)}


def test_committed_int8_models_come_from_the_bundled_decoder(decoder_file):
    """models/ ships the int8 pair for app developers: exported from the decoder bundled beside
    them (a decoder update without a re-export fails here), unchanged, and passing verify."""
    models = Path(decoder_file).parent
    manifest = json.loads((models / tflite.MANIFEST).read_text())
    assert manifest["decoder_sha256"] == sha256_file(decoder_file), "re-run python -m export.tflite"
    for key in (sig.PREDICT, sig.TRANSFORM):
        name = sig.model_file(key, "int8")
        assert manifest["files"][name]["sha256"] == sha256_file(models / name)
    rows, _ = verify.verify(str(models), decoder_file, ("int8",), repeats=1)
    assert rows[0]["ok"], rows


def test_verify_needs_photos_and_styles_together():
    with pytest.raises(StyleError, match="both --photos and --styles"):
        verify.measured_images(SIZE, SIZE, photos=[paths.EXAMPLE_CONTENT])


def test_verify_command_reads_the_default_folder_and_prints_no_start_up_noise(exported):
    """Run where export.tflite wrote by default, with TensorFlow's log level left to the tool."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    run = subprocess.run([sys.executable, "-m", "export.verify", "--variants", "int8", "--repeats", "1"],
                         cwd=exported.parent, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    noise = [line for line in run.stderr.splitlines()
             if re.search(r"tensorflow/|cuda|onednn|xnnpack|absl|^[IWE]\d{4} ", line, re.IGNORECASE)]
    assert not noise, run.stderr
    assert "seeded synthetic" in run.stdout and "| int8 |" in run.stdout, run.stdout


def test_android_guide_documents_the_exported_signatures():
    guide = (Path(__file__).resolve().parent.parent / "BUILD.md").read_text()
    for key, (inputs, outputs) in sig.signature_table().items():
        for name, shape in {**inputs, **outputs}.items():
            assert re.search(rf"`{name}`\s*\|\s*float32\s*\|\s*`{re.escape(str(shape))}`", guide), name
        assert f'"{key}"' in guide


def test_savedmodel_hub_load_and_keras_layer(tmp_path, monkeypatch, decoder_file):
    import tensorflow_hub as hub

    monkeypatch.chdir(tmp_path)
    path = savedmodel.export(decoder_file, savedmodel.DEFAULT_PATH)  # Its parent made.
    assert path.resolve() == (tmp_path / tflite.DEFAULT_OUTPUT_DIR / "adain_savedmodel").resolve()
    content = np.random.default_rng(0).uniform(size=(1, 50, 70, 3)).astype(np.float32)
    style = np.random.default_rng(1).uniform(size=(1, 40, 40, 3)).astype(np.float32)
    module = hub.load(str(path))
    out = module(tf.constant(content), tf.constant(style))[0]
    assert out.shape == (1, 50, 70, 3) and np.isfinite(out.numpy()).all()
    half = module.with_alpha(tf.constant(content), tf.constant(style), tf.constant(0.5))[0]
    assert half.shape == out.shape
    small = module(tf.constant(content[:, :20, :30]), tf.constant(style))[0]  # No room to mirror.
    assert small.shape == (1, 20, 30, 3) and np.isfinite(small.numpy()).all()
    layer = hub.KerasLayer(str(path), signature="serving_default", output_key=sig.STYLIZED_IMAGE)
    via_layer = layer({sig.CONTENT_IMAGE: tf.constant(content), sig.STYLE_IMAGE: tf.constant(style)})
    np.testing.assert_allclose(via_layer.numpy(), out.numpy(), atol=1e-5)
