"""The Textual wizard: the only part of reset-wizard that imports textual."""
