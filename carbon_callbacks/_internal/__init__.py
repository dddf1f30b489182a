"""Process-wide plumbing every stage shares: environment, warnings, exit, fork and signal hooks."""
