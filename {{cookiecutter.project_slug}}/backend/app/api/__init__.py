# Yours (sage-obs scaffold): change it freely; `make update` merges any template change into your edits.
"""HTTP routes. Add your own routers here and include them in main.py."""
