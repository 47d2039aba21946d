"""Cross-cutting request handling, as Bolt middleware."""
