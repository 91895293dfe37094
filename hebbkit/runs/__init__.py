"""Runs: turns recipes, grid files and searches into run folders (locally or through Ray)."""
