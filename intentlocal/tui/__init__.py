"""The Textual app: a thin layer over intentlocal.api; the core never imports this."""
