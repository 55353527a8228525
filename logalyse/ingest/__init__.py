"""The import pipeline: sources -> formats -> privacy -> store, in bounded batches.

Per batch, DuckDB parses every line at once in the store's in-memory instance (which
never spills: staged lines hold raw addresses). Python touches only distinct values:
user agents, client addresses and (day, address, user agent, host) combinations.

- `options`: what a user chooses (`ImportOptions`), the inputs, the sizes that bound memory
- `importer`: the run (`Importer`, `ingest`): files read, streams pushed in, commits
- `batch`: one block's steps in SQL, on the parsing threads
- `agents`: user agent ids and classification, once per distinct user agent
- `checkpoints`: which input is which, how far each was read, replays of a stream
- `staging`, `commit`: parsed batches waiting, then written with their checkpoint
- `_memory`: handing memory back between batches
"""

from __future__ import annotations

from ._memory import purge_duckdb_memory
from .batch import line_ends, load_lines
from .importer import Importer, StreamFeed, ingest, parse_failure_message
from .options import (
    DEFAULT_BATCH_BYTES,
    ImportOptions,
    Input,
    ProgressFn,
    RejectFn,
    StreamInput,
)

__all__ = [
    "DEFAULT_BATCH_BYTES",
    "ImportOptions",
    "Importer",
    "Input",
    "ProgressFn",
    "RejectFn",
    "StreamFeed",
    "StreamInput",
    "ingest",
    "line_ends",
    "load_lines",
    "parse_failure_message",
    "purge_duckdb_memory",
]
