"""WAL archiving: `wal push` (archive_command) and `wal fetch` (restore_command) on a light import path, and the
archive's listing, status and enablement on the full one.

`push`, `fetch`, `access`, `settings_cache`, `names` and `main` import only the standard library (not dataclasses
or argparse, and tomllib only when the settings cache is stale), the storage backends, zstandard and pyrage:
PostgreSQL runs the archive command once per 16 MB segment, as the server's OS user, and every millisecond of
start-up counts. `spool` (the fetch-ahead prefetcher) imports what `fetch` does; `served`, the restore_command's
first step under `python -S`, imports only `os` and `sys`. `archive`, `enable` and `status` may import anything.
"""
