"""Prefect tasks: thin wrappers over the posguard library, retried through `is_retryable`."""
