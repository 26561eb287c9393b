"""One module per `segx` sub-command; each defines `command` and only parses options and calls the Python API."""
