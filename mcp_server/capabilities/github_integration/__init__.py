"""GitHub issues, labels, files, pull requests and webhooks."""
