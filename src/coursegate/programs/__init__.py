"""Programs: a tenant's education program and its crediting rules."""
