"""Pieces every service shares, so the three services differ only in their routes."""
