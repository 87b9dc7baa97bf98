"""Slack, email, Teams and Discord notifications with templates."""
