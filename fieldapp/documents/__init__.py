"""Documents that leave fieldapp: evidence packages (art. 27) and, later, generated paper."""
