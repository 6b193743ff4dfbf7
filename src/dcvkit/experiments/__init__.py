"""Jobs that combine tasks and measure the course's claims (the quickstart comparison first)."""
