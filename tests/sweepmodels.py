"""Imported by a sweep spec (`import: [sweepmodels]`) so Ray workers know the tiny test model and
its 8×8 grid; registering on import is what a user's own model module does."""

from tinymodel import register

register()
