"""Allow `python -m cuisine_db`."""

from cuisine_db.cli import main

main()
