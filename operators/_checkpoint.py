"""Temporary alias of :mod:`operators.checkpoint` (the module's old private name).

Kept only until every importer inside the package uses :mod:`operators.checkpoint`;
new code imports that public module.
"""

from operators.checkpoint import (  # noqa: F401
    CHECKPOINT_FORMAT,
    _fsync_dir,
    append_jsonl,
    atomic_save,
    atomic_write,
    atomic_write_text,
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
    write_jsonl,
)

__all__: list[str] = []  # nothing public: import operators.checkpoint
