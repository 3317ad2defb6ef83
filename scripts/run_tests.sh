#!/usr/bin/env bash
# `make test` and `make test-full`: the tests marked extras run in .venv-extras, the others in .venv.
#   scripts/run_tests.sh quick|full [pytest arguments...]
# quick: the fast suite. Its few extras tests run in one process beside the others' workers: after them they
# would add about 10 s (a second start and collection) to a loop that keeps under two minutes on 2 cores.
# full: every test, slow and slurm ones included, each venv's share spread over the cores in turn.
# Exit status 5 is pytest's "no test selected", as when the arguments name tests of one kind only.
set -uo pipefail
kind=$1
shift
BIN=${BIN:-.venv/bin}
EXTRAS_BIN=${EXTRAS_BIN:-.venv-extras/bin}
PARALLEL=(-n auto --dist loadfile)

passed() { [ "$1" -eq 0 ] || [ "$1" -eq 5 ]; }

if [ "$kind" = full ]; then
    "$BIN/python" -m pytest "${PARALLEL[@]}" -m "not extras" "$@"
    passed $? || exit 1
    "$EXTRAS_BIN/python" -m pytest "${PARALLEL[@]}" -m "extras" "$@"
    passed $? || exit 1
    exit 0
fi

extras_log=$(mktemp)
trap 'rm -f "$extras_log"' EXIT
"$EXTRAS_BIN/python" -m pytest -n0 -p no:cacheprovider -m "extras and not slow and not slurm" "$@" >"$extras_log" 2>&1 &
extras=$!
"$BIN/python" -m pytest "${PARALLEL[@]}" -m "not slow and not slurm and not extras" "$@"
training_venv=$?
wait "$extras"
extras_venv=$?
echo "=== the tests marked extras, run in $EXTRAS_BIN beside the others ==="
cat "$extras_log"
passed "$training_venv" && passed "$extras_venv"
