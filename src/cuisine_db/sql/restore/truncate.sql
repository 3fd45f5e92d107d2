-- Empties tables (fresh storage for heap and indexes), not their children; returns nothing.
TRUNCATE ONLY {tables}
