"""The training engine every stage shares: the accelerate loop, checkpoints (atomic, resumable), memory and
speed switches, and filling the disk caches before a run."""
