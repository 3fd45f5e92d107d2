"""Archiving old rows: exported to the backup repository, verified, then deleted in short batches; and back.

Modules: `request` (older-than=, batch=, pause= as operators type them), `table` (which table, its key, its
timestamp column, who references it), `catalog` (archives in the repository: names, states, records), `export`
(rows -> zstd -> age -> sha256 objects and a manifest), `deletion` (batches by primary key and row version),
`restore` (rows back, never duplicated), `service` (a run: lock, resume, export, verify, delete).
Kept free of imports so that importing one module stays fast.
"""
