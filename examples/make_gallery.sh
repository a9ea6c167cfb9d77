#!/usr/bin/env bash
# Regenerates the README gallery with the tool itself (defaults: optimize, 256 then full size).
set -euo pipefail
cd "$(dirname "$0")"
run() { python -m style_tf.run --noprogress --content="content/$1" --style="style/$2" --output="gallery/$3" "${@:4}"; }
run chelsea.png Van_Gogh_The_Night_Cafe_background.jpg chelsea_night_cafe.jpg
run coffee.png kandinky.png coffee_kandinsky.jpg
run machuPicchu.jpg GreatWave.png machu_picchu_great_wave.jpg
run astronaut.png renoir-moulin_de_la_galette.png astronaut_renoir_luminance.jpg --preserve_color=luminance
