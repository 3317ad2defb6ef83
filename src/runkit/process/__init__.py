"""The process a run lives in: its Hydra mode and DDP rank (mode), its set-up (setup), DDP's extra ranks (ddp),
one GPU per side-by-side sweep job (devices), stopping on a signal (interruption), SLURM's time limit (slurm),
shared-file locks (locks), and what its hardware computes natively (precision)."""
