-- sets a role's password from a SCRAM verifier computed by the client (the password itself never travels)
ALTER ROLE {role} PASSWORD {verifier}
