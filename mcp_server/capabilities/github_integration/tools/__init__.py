"""Tool modules of the github_integration capability: pure functions of (ctx, params)."""
