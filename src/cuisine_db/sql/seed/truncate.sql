-- Empty the seeded tables and restart their identity sequences.
TRUNCATE {tables} RESTART IDENTITY
