"""The run's log file (`<task>.log` in the run folder), which ends the run in one line when the disk fills.

logging's own FileHandler prints a traceback to the console for every line it cannot write, and the run goes on
writing nothing. This one stops writing to the file, and raises the one line in the main thread, where the run
records how it ended; a line logged from another thread says it once on the console instead.
"""

import contextlib
import logging
import sys
import threading
from pathlib import Path

from runkit.process.resources import DISK_FULL, disk_full_error


class RunLogFile(logging.FileHandler):
    """logging.FileHandler, but a full disk is the run's end (hydra/default.yaml names it for job_logging)."""

    def handleError(self, record: logging.LogRecord) -> None:
        error = sys.exc_info()[1]
        if not isinstance(error, OSError) or error.errno not in DISK_FULL:
            super().handleError(record)
            return
        log_file = Path(self.baseFilename)
        logging.getLogger().removeHandler(self)  # the other lines still reach the console
        with contextlib.suppress(OSError):  # closing flushes what did not fit, and fails again; it closes all the same
            self.close()
        full = disk_full_error(log_file.parent, f"the log file {log_file.name}")
        if threading.current_thread() is threading.main_thread():
            raise full
        print(f"Error: {full}", file=sys.stderr)
