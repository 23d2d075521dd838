"""inventory: the seeded, read-only catalogue with stock figures, and idempotent reservations."""
