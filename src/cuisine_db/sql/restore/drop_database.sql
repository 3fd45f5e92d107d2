-- Drops a database; fails while anyone is connected to it; returns nothing.
DROP DATABASE {name}
