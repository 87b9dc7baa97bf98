"""The six capabilities; each package is a table of tool specs plus the tools behind it."""
