"""trainlab: a Lightning + Hydra research template."""

__version__ = "0.1.0"
