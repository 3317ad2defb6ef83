"""`python -m runkit.mlflow_ui STORE HOST PORT` (what `make mlflow` runs): MLflow's UI on trainlab's store, opening
on the runs.

MLflow's own `mlflow ui` opens on its home page, which greets with its GenAI features; trainlab's runs are one
experiment per task (train, eval, ...) a few clicks away. This prints, for each of them, the link to its runs
table (`#/experiments/<id>/runs`, the UI's own address for it), then starts `mlflow ui` on the store. MLflow's UI
takes the runs' filter and sort from the link, not its columns: metrics are added as columns from the table's
Columns menu, and Views > "Save as new view" keeps that choice for the experiment.
"""

import os
import sys
from pathlib import Path
from urllib.parse import urlparse


def runs_links(store: str, host: str, port: str) -> list[str]:
    """`train: http://host:port/#/experiments/1/runs`, one line per experiment in the store but MLflow's empty
    Default; none when the store does not exist yet."""
    location = urlparse(store)
    if location.scheme == "sqlite" and not Path(location.path).is_file():
        return []
    from mlflow import MlflowClient  # seconds to import: only once the store is known to exist

    experiments = MlflowClient(store).search_experiments()
    return [
        f"{experiment.name}: http://{host}:{port}/#/experiments/{experiment.experiment_id}/runs"
        for experiment in sorted(experiments, key=lambda experiment: int(experiment.experiment_id))
        if experiment.name != "Default"
    ]


def main(argv: list[str] | None = None) -> None:
    store, host, port = argv if argv is not None else sys.argv[1:]
    links = runs_links(store, host, port)
    if links:
        print("trainlab's runs in MLflow, once the server below is up (Columns > Metrics adds metrics to the table):")
        print("\n".join(f"  {link}" for link in links), flush=True)
    else:
        print(f"No MLflow runs in {store} yet: a run with logger=mlflow (or logger=many) logs there.", flush=True)
    mlflow = str(Path(sys.executable).parent / "mlflow")
    os.execv(mlflow, [mlflow, "ui", "--backend-store-uri", store, "--host", host, "--port", port])


if __name__ == "__main__":
    main()
