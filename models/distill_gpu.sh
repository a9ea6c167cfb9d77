#!/usr/bin/env bash
# Distils the phone-class student on a lent GPU machine, which has JAX but not TensorFlow
# (BUILD.md, "The phone-class student"). Run there from the repository's root, with the
# pack's sources in data/distill/ and the wheels of keras, namex and optree in .whl/:
#
#   bash models/distill_gpu.sh SECONDS [more python -m style_tf.distill flags]
#
# Trains for SECONDS (then stops at the end of an epoch, saved), the teacher running in each
# step (`--targets teacher`), resuming runs/student if it is there, and copies runs/student
# to $OUT (the device tool brings that folder back).
set -euo pipefail
seconds=${1:?give the training time in seconds}
shift
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax PYTHONUNBUFFERED=1
status=0
timeout -s INT -k 120 "$seconds" python3 -m style_tf.distill --pack data/distill --model_dir runs/student \
  --targets teacher --crop 256 --batch_size 32 --steps_per_epoch 100 --steps 100000 "$@" || status=$?
mkdir -p "${OUT:-out}"
cp -r runs/student "${OUT:-out}/"
[ "$status" -eq 0 ] || [ "$status" -eq 130 ]  # 130: stopped by the time limit, saved.
