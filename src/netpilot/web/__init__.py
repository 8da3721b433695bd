"""The dashboard: static files the API serves."""
