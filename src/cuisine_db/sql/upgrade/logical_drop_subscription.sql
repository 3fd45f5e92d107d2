-- Removes a subscription and the replication slot it holds on its publisher.
DROP SUBSCRIPTION IF EXISTS {name}
