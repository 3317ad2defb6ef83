"""How the costs of a run grow with its data and its sweep (`make bench ARGS="--only scaling"`).

    .venv/bin/python scripts/benchmark_scaling.py               # the section alone: its JSON, printed
    .venv/bin/python scripts/benchmark_scaling.py --one-run N   # one run of N images (the section's child)

The measurements are in bench/scaling.py. `make bench ARGS="--only scaling"` runs them too and keeps
their results in benchmarks/results.*; this script only prints them. The section starts this script
with --one-run for each size, so that each run's peak memory is its own process's.
"""

import json
import sys

from bench.scaling import one_run, scaling_results


def main() -> None:
    if sys.argv[1:2] == ["--one-run"]:
        print(json.dumps(one_run(int(sys.argv[2]))))
    else:
        print(json.dumps(scaling_results(), indent=2))


if __name__ == "__main__":
    main()
