"""Documents: the archived PDFs of finalised sheets and forms, and where they go."""
