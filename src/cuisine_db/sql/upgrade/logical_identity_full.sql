-- Gives one table REPLICA IDENTITY FULL (the whole old row identifies it), so its UPDATE and DELETE replicate.
ALTER TABLE {table} REPLICA IDENTITY FULL
