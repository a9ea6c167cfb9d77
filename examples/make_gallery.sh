#!/usr/bin/env bash
# Regenerates the README gallery with the tool itself (optimize engine at its defaults, 320 then
# full size; then the AdaIN sheets).
set -euo pipefail
cd "$(dirname "$0")"
run() { python -m style_tf.run --method=optimize --noprogress --content="content/$1" --style="style/$2" --output="gallery/$3" "${@:4}"; }
run chelsea.png Van_Gogh_The_Night_Cafe_background.jpg chelsea_night_cafe.jpg
run coffee.png kandinky.png coffee_kandinsky.jpg
run machuPicchu.jpg GreatWave.png machu_picchu_great_wave.jpg
run astronaut.png renoir-moulin_de_la_galette.png astronaut_renoir_luminance.jpg --preserve_color=luminance
# AdaIN: every content x style in one forward pass each at 512 px (its default size, shown at
# 320), then alpha swept for two photos.
adain() { python -m style_tf.sheet --method=adain --max_dim=512 --cell=320 "$@"; }
adain --contents content --styles style --output gallery/sheet_adain.png
adain --contents content/chelsea.png,content/machuPicchu.jpg --styles style/kandinky.png \
  --sweep alpha=0,0.25,0.5,0.75,1 --output gallery/sheet_adain_alpha.png
# The face pass: the astronaut's face (98 px at 512) without and with it, at full size.
adain --contents content/astronaut.png --styles style/renoir-moulin_de_la_galette.png,style/GreatWave.png \
  --cell=512 --sweep face_size=0,480 --output gallery/sheet_adain_faces.png
# Video: three consecutive frames of examples/clips/bunny.mp4: the input, then the clip stylized
# with --temporal=none and with --temporal=flow (the default), at the clip's 256 px.
tmp=$(mktemp -d)
python -m style_tf.run --noprogress --content=clips/bunny.mp4 --output="$tmp/none.mp4" --temporal=none
python -m style_tf.run --noprogress --content=clips/bunny.mp4 --output="$tmp/flow.mp4"
python - "$tmp" <<'EOF'
import sys

import numpy as np

from style_tf import images, video

rows = []
for clip in ("clips/bunny.mp4", f"{sys.argv[1]}/none.mp4", f"{sys.argv[1]}/flow.mp4"):
    frames = [f.image for i, f in enumerate(video.read(clip, (144, 256))) if i in (30, 31, 32)]
    rows.append(np.concatenate(frames, axis=1))
images.save_image("gallery/video_bunny.jpg", np.concatenate(rows, axis=0))
EOF
rm -r "$tmp"
# The web app's page with a result (README), as its browser test sees it (needs /usr/bin/chromium).
STYLE_TF_APP_SCREENSHOT="$PWD/gallery/app.png" python -m pytest -q ../tests/test_app.py -k upload_pick
