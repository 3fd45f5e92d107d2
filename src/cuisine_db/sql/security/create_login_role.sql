-- Creates a login role from a SCRAM verifier computed on the client (never a plain password).
CREATE ROLE {name} LOGIN PASSWORD {verifier} CONNECTION LIMIT {limit}
