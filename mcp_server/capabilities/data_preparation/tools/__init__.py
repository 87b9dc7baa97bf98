"""Tool modules of the data_preparation capability: pure functions of (ctx, params)."""
