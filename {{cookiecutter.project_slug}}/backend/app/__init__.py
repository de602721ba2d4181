"""{{ cookiecutter.project_name }} API."""
