"""Tool modules of the ml_evaluation capability: pure functions of (ctx, params)."""
