-- Replaces a role's password with a SCRAM verifier computed on the client (never a plain password).
ALTER ROLE {name} PASSWORD {verifier}
