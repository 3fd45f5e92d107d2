-- Loads one batch of ledger lines into the temporary batch table.
COPY {batch} FROM STDIN
