"""Small run settings shared by the tests, so a test names only what it changes."""

# A small MLP on Gaussian clusters: a run trains in about a second.
TINY_MLP = [
    "data=synthetic_classification",
    "model=mlp",
    "data.num_train=256",
    "data.num_val=64",
    "data.num_test=64",
    "data.batch_size=32",
    "extras.print_config=false",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
]

# The default CNN, narrowed, on a few synthetic digit images.
SMALL_CNN = [
    "data.num_train=256",
    "data.num_val=64",
    "data.num_test=64",
    "data.batch_size=64",
    "model.net.channels=[8,16]",
    "model.net.hidden=32",
]
