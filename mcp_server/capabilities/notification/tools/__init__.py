"""Tool modules of the notification capability: pure functions of (ctx, params)."""
