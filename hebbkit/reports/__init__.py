"""Reports: read run, grid and search folders back into tables, markdown and pictures."""
