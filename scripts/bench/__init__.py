"""The measurements behind `make bench` (scripts/benchmark.py), one module a section.

`sections` holds the table of sections that scripts/benchmark.py runs; `fits` the three ways of training
the same CNN that several sections compare; `common` the paths, statistics and run settings they all
share. The scripts in scripts/ import this package; nothing here imports them back.
"""
