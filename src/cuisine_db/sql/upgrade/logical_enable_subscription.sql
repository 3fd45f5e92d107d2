-- Starts a subscription's apply worker (no-op when it runs already).
ALTER SUBSCRIPTION {name} ENABLE
