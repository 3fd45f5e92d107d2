"""The web dashboard (cuisine-db dashboard): the toolkit's figures on five read-only pages, served on loopback."""
