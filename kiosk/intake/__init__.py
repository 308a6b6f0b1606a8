"""Patient intake from the practice system (PIMS): CSV and JSON imports."""
