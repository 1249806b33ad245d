"""Retrieval: finding the right code for a task (hybrid search) and outlining the repository (repo map)."""
