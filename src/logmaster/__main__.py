"""``python -m logmaster`` runs the command line."""

from logmaster.cli import app

app()
