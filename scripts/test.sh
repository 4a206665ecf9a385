#!/usr/bin/env bash
# The test command (README, and .ci/run calls exactly this): installs what is needed, then runs
# the default test suite.  `bash scripts/test.sh --slow` also runs the tests marked slow;
# other arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
marker=(-m "not slow")
args=()
for a in "$@"; do
  if [ "$a" = "--slow" ]; then marker=(); else args+=("$a"); fi
done
export AISINGER_PROGRESS=0
set +e
.venv/bin/python -m pytest "${marker[@]}" "${args[@]}"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then echo "no tests were collected: failing" >&2; exit 1; fi
exit "$rc"
