"""HTTP API: routers, I/O schemas, authentication and the one error handler."""
