#!/bin/sh
# Reproduces the comparison tables of benchmarks/RESULTS.md, from the repository root.
# Needs .venv-compare (see README.md here); the accuracy part runs as root (unshare -m).
set -e
.venv-compare/bin/python benchmarks/compare/overhead.py --json benchmarks/results/compare_overhead.json
.venv-compare/bin/python benchmarks/compare/accuracy.py --scenarios constant bursty idle_tail \
    --json benchmarks/results/compare_accuracy.json
.venv-compare/bin/python benchmarks/compare/accuracy.py --scenarios amd_constant amd_bursty \
    --json benchmarks/results/compare_accuracy_amd.json
