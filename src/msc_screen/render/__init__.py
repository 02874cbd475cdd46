"""Renderers: the Assessment as text (terminal), FHIR DetectedIssue, CDS cards, reports."""
