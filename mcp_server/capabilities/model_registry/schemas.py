"""Pydantic input and output models of the model_registry tools."""
