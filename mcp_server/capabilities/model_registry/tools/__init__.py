"""Tool modules of the model_registry capability: pure functions of (ctx, params)."""
