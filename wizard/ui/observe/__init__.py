"""The observation viewer: a saved session (open) or a live watch, as events and ladders."""
