"""The torch engine: a recipe's network and its two phases. Knows no files, environment
variables or command line; :mod:`hebbkit.runs` turns its results into run folders."""
