"""Tests of the manager pages and the services behind them."""
