"""Forms: templates built by managers (versioned), filled per patient, finalised as PDFs."""
