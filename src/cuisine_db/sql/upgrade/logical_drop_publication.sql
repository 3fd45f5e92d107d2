-- Removes a publication.
DROP PUBLICATION IF EXISTS {name}
