"""Test helpers shared across test files (scripted servers, fixtures' building blocks)."""
