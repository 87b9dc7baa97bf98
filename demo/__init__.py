"""The README's end-to-end demo: drives the server through the official MCP client."""
