"""Allow `python -m cuisine_db`."""

from cuisine_db.entry import main

main()
