"""Helpers more than one test package uses: builders, a tablet speaking the sync protocol,
the test databases. Test modules import from here, never from one another."""
