"""orders: validates an order and reserves stock at inventory; idempotent by key."""
