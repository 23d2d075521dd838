"""gateway: the edge API; fans out to inventory and orders."""
