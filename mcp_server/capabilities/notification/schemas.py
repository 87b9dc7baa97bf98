"""Pydantic input and output models of the notification tools."""
