"""Model registry with gap-free versions, statuses and rollback."""
