"""Tool modules of the ml_training capability: pure functions of (ctx, params)."""
