"""Data formats: JSON Lines manifests (validated, errors naming file, line and field), images, webdataset shards,
subject scenes and preference pairs."""
