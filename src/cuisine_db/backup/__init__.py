"""Backups: logical backups (pg_dump), the catalog, restores, verification and retention.

Modules: `names` (backup names, types, tables=), `manifest`, `catalog` (list, `latest`), `logical` (create),
`restore` (whole database, swapped in), `restore_tables` (chosen tables, one transaction), `verify`,
`retention` (GFS), `toc` (pg_restore's table of contents), `feeder` (pipes for pg_restore), `workspace`.
Kept free of imports so that importing one module (e.g. for WAL archiving) stays fast.
"""
