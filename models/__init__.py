"""Our trained ExpandNet weights (see README.md here); installed as the package ``hdrvideo.models``."""
