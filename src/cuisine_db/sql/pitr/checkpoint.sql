-- forces a checkpoint (after recovery, so a restart replays nothing)
CHECKPOINT
