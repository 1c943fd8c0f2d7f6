"""The Data Lake: its layout (folders and file names of the spec) and the object store under it."""
