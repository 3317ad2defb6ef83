"""Read a W&B offline run back from its transaction log (`run-<id>.wandb`), with wandb's own record type.

wandb has no public Python reader for an offline run: its core (a Go binary) reads the log when
`wandb sync` uploads it. The file is a 7-byte W&B header, then LevelDB's log format (32 KiB blocks
of chunks, each with a 7-byte header: checksum, length, kind), and each whole record is a protobuf
`wandb_internal_pb2.Record`. A change of that format fails these reads, and the logger tests with them.
"""

import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wandb.proto.wandb_internal_pb2 import Record

HEADER = b":W&B"
BLOCK_SIZE = 32 * 1024
CHUNK_HEADER = struct.Struct("<IHB")  # checksum, length, kind
FULL, LAST = 1, 4  # chunk kinds that end a record (FIRST and MIDDLE continue it)


@dataclass
class OfflineRun:
    name: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)


def records(path: Path) -> Iterator[Record]:
    data = path.read_bytes()
    assert data.startswith(HEADER), f"{path} is not a W&B transaction log"
    position, pending = 7, b""
    while position + CHUNK_HEADER.size <= len(data):
        left_in_block = BLOCK_SIZE - position % BLOCK_SIZE
        _, length, kind = CHUNK_HEADER.unpack_from(data, position)
        if left_in_block < CHUNK_HEADER.size or kind == 0:  # a block's zero padding
            position += left_in_block
            continue
        start = position + CHUNK_HEADER.size
        pending += data[start : start + length]
        position = start + length
        if kind in (FULL, LAST):
            yield Record.FromString(pending)
            pending = b""


def item_key(item: Any) -> str:
    return item.key or "/".join(item.nested_key)  # val/acc is stored as nested keys ['val', 'acc']


def read_offline_run(run_folder: Path) -> OfflineRun:
    """The run's name, config, last summary values and history rows, from its only offline run."""
    (log,) = run_folder.glob("wandb/offline-run-*/run-*.wandb")
    run = OfflineRun()
    for record in records(log):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run.name = record.run.display_name
        elif kind == "config":
            run.config.update({item_key(item): json.loads(item.value_json) for item in record.config.update})
        elif kind == "summary":
            run.summary.update({item_key(item): json.loads(item.value_json) for item in record.summary.update})
        elif kind == "history":
            run.history.append({item_key(item): json.loads(item.value_json) for item in record.history.item})
    return run
