"""Platform Guard: keep every image in a registry runnable on the platforms its clusters use."""
