"""Defaults of an environment's `[wal]` settings, shared by config.py (pydantic) and backup/wal/access.py (the
archive command's light reading of the same file). Nothing here imports anything."""

ARCHIVE_TIMEOUT = "15min"
PUSH_BATCH = 8        # .ready files one call pushes
PUSH_THREADS = 4
PREFETCH = 8          # segments one fetch brings
FETCH_THREADS = 4
