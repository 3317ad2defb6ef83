"""trainlab's Hydra launcher for SLURM: `trainlab-train -m hydra/launcher=slurm ...`.

hydra-submitit-launcher's SLURM launcher, waiting for its jobs in a way that tells how each one ended (see
slurm_launcher.py). Hydra finds it by importing every module under the `hydra_plugins` namespace package;
submitit itself is imported only when a sweep is launched.
"""
