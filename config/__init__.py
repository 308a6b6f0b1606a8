"""Configuration: defaults, testing and production, overridden by KIOSK_* variables."""
