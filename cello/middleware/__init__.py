"""Built-in middleware, switched on with ``app.enable_*()``."""
