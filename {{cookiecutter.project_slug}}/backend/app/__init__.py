# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""{{ cookiecutter.project_name }} API."""
