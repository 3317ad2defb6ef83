"""A search whose study cannot be opened (a damaged journal or SQLite file) stops in one line naming it, exit
code 2, and leaves the file byte for byte as it was: it may hold the only record of a long search."""

import subprocess
from pathlib import Path

import pytest

from tests.runkit.helpers.process import BIN

SEARCH = ["-m", "hparams_search=optuna", "debug=fdr", "hydra.sweeper.n_trials=1"]
# What each line says of its file: Optuna's own error for SQLite, trainlab's check for a journal (Optuna would
# skip a record cut short and append after it).
REASONS = {"optuna.journal": "(its last record, line 2, is cut short)", "optuna.db": "(DatabaseError: "}
DAMAGED = {
    # a journal cut short mid-record, as a full disk or a killed copy leaves it
    "optuna.journal": b'{"op_code":0,"worker_id":"a","study_name":"train_optuna","directions":[1]}\n{"op_code":4,"wor',
    "optuna.db": b"SQLite format 3\x00" + bytes(range(256)) * 8,  # a header, then nothing SQLite can read
}


@pytest.mark.parametrize("name", sorted(DAMAGED))
def test_a_damaged_study_is_named_in_one_line_and_left_as_it_is(tmp_path: Path, name: str) -> None:
    study = tmp_path / "sweep" / name
    study.parent.mkdir()
    study.write_bytes(DAMAGED[name])
    done = subprocess.run(
        [str(BIN / "trainlab-train"), *SEARCH, f"hydra.sweep.dir={study.parent}", f"hydra.sweeper.storage={study}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith(
        f"Error: hydra.sweeper.storage={study} could not be opened as an Optuna study {REASONS[name]}"
    )
    assert line.endswith(
        "it is left as it is: restore it, move it aside to start a new study, or give another storage."
    )
    assert study.read_bytes() == DAMAGED[name]
    assert not list(study.parent.glob("000_*"))  # no trial ran


@pytest.mark.slow
def test_a_search_whose_study_was_damaged_later_still_summarises_its_jobs(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    command = [str(BIN / "trainlab-train"), *SEARCH, f"hydra.sweep.dir={sweep}"]
    first = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    journal = sweep / "optuna.journal"
    with journal.open("ab") as file:  # a record cut short, as a full disk leaves it
        file.write(b'{"op_code":5,"wor')
    damaged = journal.read_bytes()

    again = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert again.returncode == 2 and "is cut short" in again.stderr.strip().splitlines()[-1]
    summary = subprocess.run(
        [str(BIN / "trainlab-summarize"), str(sweep)], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert summary.returncode == 0, summary.stderr[-3000:]
    assert summary.stdout.startswith(f"Study not read: hydra.sweeper.storage={journal} could not be opened")
    assert "| ok |" in summary.stdout  # the job's row, from its own folder
    assert journal.read_bytes() == damaged


@pytest.mark.extras  # SQLAlchemy's PostgreSQL driver, psycopg, is in .venv-extras
def test_a_database_server_that_is_not_there_is_named_in_one_line_with_the_password_hidden(tmp_path: Path) -> None:
    storage = f"postgresql://trainlab:secret@/optuna?host={tmp_path / 'no_server_here'}"  # a socket folder, empty
    done = subprocess.run(
        [
            str(BIN / "trainlab-train"),
            *SEARCH,
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
            f"hydra.sweeper.storage='{storage}'",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "secret" not in done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith("Error: hydra.sweeper.storage=postgresql://trainlab:***@/optuna?host=")
    assert "could not be opened as an Optuna study (OperationalError: connection is bad: " in line
    assert line.endswith(
        "check that its server runs and the URL's host, port, database, user and password (make postgres starts a PostgreSQL server here)."
    )
    assert not list((tmp_path / "sweep").glob("000_*"))  # no trial ran
