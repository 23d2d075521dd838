"""Three small shop services that run Spring Cloud style, Kubernetes style or hybrid from one codebase."""

__version__ = "0.1.0"
