-- Flush everything to disk so the shutdown that follows is quick.
CHECKPOINT
