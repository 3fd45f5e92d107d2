-- Makes the current transaction read-only, so an explained SELECT cannot write even through a function.
SET TRANSACTION READ ONLY
