#!/usr/bin/env bash
# One-command GPU check (see benchmarks/gpu_check.py): GPU tests, then BatchTopK on
# SynthSAEBench-16k in bf16, printing samples/s, the projected time for 200M samples,
# peak GPU memory and the final metrics, and writing gpu_check.json.
# Extra arguments go to gpu_check.py (--reference, --model-dir DIR, --json FILE, --dry-run, ...).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PYTHONPATH="${repo}${PYTHONPATH:+:${PYTHONPATH}}"
exec "${PYTHON:-python}" "${repo}/benchmarks/gpu_check.py" "$@"
