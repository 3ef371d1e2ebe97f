"""One module per command group; each parses, calls one library function, renders."""
