#!/usr/bin/env bash
# valgrind memcheck over a representative subset: the drop-in class, matmul and a model fit/predict,
# with a debug (-O1 -g) build in a scratch copy, or with --installed the package pip installed (the
# optimised build users run, -g included; CI uses it to save a second build). Fails on any memcheck
# error inside annfast's code or a definite leak attributed to it.
#   bash tools/valgrind.sh [--installed]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ "${1:-}" = "--installed" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  cd "$work"                          # outside the checkout: import the installed annfast
  workload="$root/tools/valgrind_workload.py"
  python -c 'import annfast._core' || { echo "valgrind.sh --installed: annfast is not installed"; exit 1; }
else
  source "$(dirname "$0")/scratch_build.sh"
  scratch_build ANNFAST_DEBUG=1 tools
  export PYTHONPATH="$work"
  workload=tools/valgrind_workload.py
fi
export PYTHONMALLOC=malloc ANNFAST_NUM_THREADS=2
log="$work/valgrind.log"
py=$(python -c 'import sys; print(sys.executable)')   # the real interpreter, not a shim script
valgrind --tool=memcheck --leak-check=full --errors-for-leak-kinds=definite \
  --log-file="$log" "$py" "$workload"
# Only count errors whose stack passes through annfast's own code (CPython's are not ours).
ours=$(python - "$log" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
blocks = re.split(r"\n==\d+== \n", text)
bad = [b for b in blocks if re.search(r"(Invalid|uninitialised|definitely lost|Mismatched|overlap)", b)
       and re.search(r"(_core\.cpython|csrc/|af_[a-z_]+)", b)]
print(len(bad))
for b in bad[:5]:
    print(b, file=sys.stderr)
PY
)
grep -E "ERROR SUMMARY|definitely lost" "$log" | tail -2 || true
echo "valgrind.sh: $ours memcheck report(s) involving annfast code"
[ "$ours" = "0" ]
