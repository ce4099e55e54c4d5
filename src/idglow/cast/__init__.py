"""The synthetic cast: a procedural world of identities, ages and groups, its renderer and its judges."""
