-- The port the server listens on from its next start.
ALTER SYSTEM SET port = {port}
