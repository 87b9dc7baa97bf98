"""Shared helpers: storage, secrets, logging, errors, metrics, model bundles and jobs."""
