"""What a user writes, validated: recipes, overrides, search spaces, grid files.

No torch, no Ray, no rich here: these modules only read, check and write TOML-shaped data.
"""
