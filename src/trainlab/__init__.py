"""The researcher's side of trainlab: nets, models, data and callbacks in plain PyTorch and Lightning.

Nothing here imports trainlab's run machinery (`runkit`): it wraps these objects from outside, through config
and Lightning's public API. `make rename NAME=mypkg` renames this package.
"""

__version__ = "0.1.0"
