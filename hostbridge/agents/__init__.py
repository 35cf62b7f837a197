"""Plugin agents in workers (their model calls served by the host) and the capability
registry of seed 000."""
