#!/usr/bin/env bash
# Installs everything aisinger needs, idempotently: Debian packages (ffmpeg & co.) and a
# virtualenv in .venv with torch==2.13.0 (CPU) and aisinger itself (editable, with test extras).
# Both README commands (scripts/demo.sh, scripts/test.sh) call this first; `--test` (from
# scripts/test.sh) also installs what only the tests need.
set -euo pipefail
cd "$(dirname "$0")/.."

# fonts-wqy-microhei: a CJK font, so the Chinese web UI of `aisinger serve` shows characters,
# not boxes (style.css asks for Noto Sans CJK SC, then WenQuanYi Micro Hei).  Chosen by size:
# 1.6 MB download / 5 MB installed, against 56 MB / 91 MB for fonts-noto-cjk; it covers the
# simplified and traditional characters the UI uses.  In the base set because users serve the
# UI after the demo, not only the tests.
APT_PACKAGES=(ffmpeg sox libsndfile1 flite espeak-ng fluidsynth fluid-soundfont-gm
              fonts-wqy-microhei)
if [ "${1:-}" = "--test" ]; then
  # request service tests: Redis for the scale-out test; headless Chromium + its WebDriver
  # for the web-UI test (selenium drives /usr/bin/chromedriver).  Not needed by the demo,
  # which must finish in 10 minutes on a fresh machine.
  APT_PACKAGES+=(redis-server chromium chromium-driver)
fi
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "[setup] installing Debian packages: ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  # wait (up to 10 min) for another apt/dpkg process (unattended-upgrades, a second set-up)
  # to release its lock instead of failing at once with "Could not get lock"
  APT_LOCK=(-o DPkg::Lock::Timeout=600)
  $SUDO apt-get "${APT_LOCK[@]}" update -qq
  # -q, not -qq >/dev/null: a line per package downloaded and set up (chromium takes a while)
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get "${APT_LOCK[@]}" install -y -q \
    --no-install-recommends "${missing[@]}"
fi

PY="${PYTHON:-python3}"
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "aisinger needs Python >= 3.10")'
[ -x .venv/bin/python ] || "$PY" -m venv .venv

# Reinstall only when the dependency list changed.
stamp=.venv/.aisinger-setup
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  # not quiet: pip prints a line per package (and a progress bar on a terminal), so the
  # ~2 minutes of downloads are never a silent stretch
  echo "[setup] installing Python packages into .venv (torch==2.13.0, CPU; ~2 min)" >&2
  .venv/bin/python -m pip install --disable-pip-version-check "torch==2.13.0"
  .venv/bin/python -m pip install --disable-pip-version-check -e ".[test]"
  echo "$want" > "$stamp"
fi
# matplotlib builds its font cache on first import (~20 s, once): do it here, not in the middle
# of the demo's training
.venv/bin/python -c 'import matplotlib; matplotlib.use("Agg"); import matplotlib.font_manager'
