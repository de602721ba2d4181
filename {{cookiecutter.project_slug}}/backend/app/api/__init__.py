"""HTTP routes. Add your own routers here and include them in main.py."""
