"""The observability stack the template tests run for real: built from source (build.py)."""
