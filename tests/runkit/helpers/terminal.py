"""Run a console script in a real pseudo-terminal, and read its output back as a terminal would show it."""

import fcntl
import os
import pty
import re
import struct
import subprocess
import termios
from collections.abc import Sequence
from pathlib import Path

from tests.runkit.helpers.process import BIN

# Control sequences: CSI (ESC [ parameters letter); the others a terminal draws nothing for.
CSI = re.compile(r"\x1b\[([?0-9;]*)([A-Za-z])")


def run_in_terminal(name: str, args: Sequence[str], cwd: Path, columns: int, timeout: float = 300) -> str:
    """Run `trainlab-<name> args...` with a pseudo-terminal `columns` wide as its stdin, stdout and stderr, and
    return everything it wrote."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {**os.environ, "COLUMNS": str(columns), "LINES": "50", "TERM": "xterm-256color"}
    for variable in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "HYDRA_FULL_ERROR"):
        env.pop(variable, None)
    process = subprocess.Popen(
        [str(BIN / f"trainlab-{name}"), *args], cwd=cwd, env=env, stdin=terminal, stdout=terminal, stderr=terminal
    )
    os.close(terminal)
    output = bytearray()
    try:
        while True:
            try:
                data = os.read(controller, 65536)
            except OSError:  # the other end closed: the process and its children are done with the terminal
                break
            if not data:
                break
            output += data
    finally:
        os.close(controller)
        process.wait(timeout=timeout)
    return output.decode(errors="replace")


def screen_lines(raw: str, columns: int) -> list[str]:
    """The lines a terminal `columns` wide shows after `raw`, with scrollback: carriage returns, line feeds,
    cursor moves and line erases are followed, colours and modes ignored, and a row the terminal wrapped onto
    the next is joined with it again (one line as written)."""
    rows: list[list[str]] = [[]]
    continued: set[int] = set()  # rows that go on from the row above
    row = column = 0
    position = 0
    while position < len(raw):
        if match := CSI.match(raw, position):
            position = match.end()
            parameters, command = match.groups()
            count = int(parameters) if parameters.isdigit() else 1
            if command == "A":
                row = max(0, row - count)
            elif command == "B":
                row += count
            elif command == "G":
                column = count - 1
            elif command == "K":
                mode = int(parameters or 0)
                line = rows[row] if row < len(rows) else []
                line[:] = [] if mode == 2 else line[:column] if mode == 0 else [" "] * column + line[column:]
        else:
            char = raw[position]
            position += 1
            if char == "\r":
                column = 0
            elif char == "\n":
                row += 1
            elif char >= " ":
                if column >= columns:  # the terminal wraps only when a character follows a full row
                    row, column = row + 1, 0
                    continued.add(row)
                while len(rows) <= row:
                    rows.append([])
                line = rows[row]
                line.extend(" " * (column + 1 - len(line)))
                line[column] = char
                column += 1
        while len(rows) <= row:
            rows.append([])
    lines: list[str] = []
    for number, line in enumerate(rows):
        text = "".join(line)
        if number in continued and lines:
            lines[-1] += text
        else:
            lines.append(text)
    return [line.rstrip() for line in lines]
