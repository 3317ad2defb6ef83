"""Helpers shared by the entry points: building objects from config, run metadata, console output."""
