"""The HTTP door: REST API, CDS Hooks service and (from ``server.web``) the web pages."""
