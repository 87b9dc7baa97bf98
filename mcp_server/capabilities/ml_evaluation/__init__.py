"""Evaluate and compare models; plots and reports."""
