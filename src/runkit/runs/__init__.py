"""A run's folder and its files: what a run writes there, how the folder is guarded and cleaned, how it is read back.

A run folder (`logs/<task>/runs/<start time>_<overrides>/`, or a multirun's `<job number>_<values>/`) holds
`.hydra/` (Hydra's saved config), `config_tree.log`, `run_info.yaml` (how to reproduce it), `status.yaml` (how it
ended), `checkpoints/` and TensorBoard's event files; a sweep's folder also holds `sweep_keys.yaml` and `sweep_command.txt`.
These modules are the one place that knows those names, one concern each:

- status.py    status.yaml: how a run ended
- resume.py    what a run resumes from (ckpt_path=last, a sweep run again)
- commands.py  the command that started a run and the one that resumes it
- info.py      run_info.yaml and config_tree.log: what reproduces a run
- names.py     a run's folder name and its name in its loggers
- folder.py    Hydra's callbacks that guard a folder and report a sweep; discarding a run that never started
- reading.py   runs read back, for trainlab-summarize
"""
