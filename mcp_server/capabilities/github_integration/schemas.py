"""Pydantic input and output models of the github_integration tools."""
