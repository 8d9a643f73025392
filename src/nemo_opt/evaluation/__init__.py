"""Measurements of the system's own parts: retrieval recall, and what the feasible-region cross-check catches."""
