"""Unified MLOps MCP Server: one stdio MCP server for a whole ML workflow on S3 or local storage."""

__version__ = "0.1.0"
