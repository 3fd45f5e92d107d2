-- Loads an archive's COPY text into the temporary table.
COPY {rows} ({columns}) FROM STDIN
