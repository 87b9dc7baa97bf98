"""Pydantic input and output models of the ml_training tools."""
