"""Indexing: discover a repository's files, split them into symbol chunks, keep the store fresh."""
