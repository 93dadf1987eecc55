"""AETUS Python client."""
