#!/usr/bin/env bash
# The benchmarks behind docs/benchmarks.md: `pixzip bench` on every set, options passed on, reports in
# runs/bench/SET. Formats 7 and 6 (2026-12-05) and 5 (2026-12-04): `bench_sets.sh --codecs png,jpeg-xl`; format 4: `bench_sets.sh --no-adapt`.
set -e
cd "$(dirname "$0")/../.."
mkdir -p runs/bench runs/skphotos runs/skother
SK=$(python -c "import skimage, os; print(os.path.dirname(skimage.__file__))")/data
cp $SK/{astronaut,chelsea,coffee,color,ihc,motorcycle_left}.png runs/skphotos/
cp $SK/{brick,camera,cell,chessboard_GRAY,clock_motion,coins,grass,gravel,horse,logo,microaneurysms,moon,page,phantom,text}.png runs/skother/
for set in val:../shared/data/val skphotos:runs/skphotos graphics:../shared/data/graphics skother:runs/skother; do
  name=${set%%:*}; folder=${set#*:}
  pixzip bench "$folder" "$@" --out runs/bench/$name > runs/bench/$name.log 2>&1
done
