# Sourced by sanitize.sh and valgrind.sh: copy the sources (plus the named top-level folders) to a
# scratch directory $work, cd there and build in place with the given environment setting
# (e.g. ANNFAST_SANITIZE=1). The scratch copy is removed on exit unless KEEP is set.
scratch_build() {
  local setting=$1; shift
  local root
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  work=$(mktemp -d)
  trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
  cp -r "$root/setup.py" "$root/pyproject.toml" "$root/annfast" "$root/csrc" "$work/"
  for d in "$@"; do cp -r "$root/$d" "$work/"; done
  # build products of an in-place build (the .so, Cython's generated .c) are made afresh
  find "$work/annfast" \( -name '*.so' -o -name '*.c' \) -delete
  cd "$work"
  env "$setting" python setup.py -q build_ext --inplace -j2 >build.log 2>&1 || { cat build.log; exit 1; }
}
