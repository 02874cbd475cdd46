"""CDS Hooks 2.0 service (compatible with the 3.0 ballot): discovery, hooks, feedback."""
