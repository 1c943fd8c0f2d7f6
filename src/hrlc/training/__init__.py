"""Training data of the land-cover classification: reading, validating and sampling training files."""
