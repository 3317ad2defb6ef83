"""`python -m runkit.tensorboard --logdir logs`: TensorBoard, opening on each run's train-against-validation charts.

TensorBoard's own program opens on the first dashboard with data, in the order of its plugin list: Time Series,
whose first groups by name are test/ (single points, not drawn) and train/. TensorBoard lets a program choose
its plugins (its `tensorboard.main` invites swapping that module for one's own); this one lists Custom Scalars
first, where every trainlab run has a layout (runkit.loggers.tensorboard), so the browser opens there, and
prints a link that turns smoothing off: a run of a few epochs has a few points per curve, and a moving
average of them lags far behind the values. It also skips the "TensorFlow installation not found" notice that
`tensorboard` prints on every start: trainlab needs no TensorFlow. Flags are TensorBoard's own.
"""

import sys

from absl import app, logging
from tensorboard import default, program, version
from tensorboard.plugins.base_plugin import FlagsError
from tensorboard.plugins.custom_scalar.custom_scalars_plugin import CustomScalarsPlugin

# Where the link opens: the Custom Scalars dashboard, and Time Series too, without smoothing (each dashboard reads
# its setting from the URL: Time Series from the query, Custom Scalars from the fragment).
OPENING = "?smoothing=0#custom_scalars&_smoothingWeight=0"


class Server(program.WerkzeugServer):
    """TensorBoard's web server, announcing the link that opens the charts unsmoothed."""

    def print_serving_message(self) -> None:
        print(f"TensorBoard {version.VERSION} at {self.get_url()}{OPENING} (Ctrl+C to quit)", flush=True)


def plugins() -> list:
    """TensorBoard's plugins with Custom Scalars right after the core one (which has no dashboard)."""
    loaders = default.get_plugins()
    loaders.remove(CustomScalarsPlugin)
    return [loaders[0], CustomScalarsPlugin, *loaders[1:]]


def main() -> None:
    logging.set_verbosity(logging.WARNING)  # as `tensorboard` does: its info lines are for its developers
    board = program.TensorBoard(plugins=plugins(), server_class=Server)
    try:
        app.run(board.main, flags_parser=board.configure)
    except FlagsError as error:
        sys.exit(f"Error: {error}")


if __name__ == "__main__":
    main()
