"""The one client stack every upstream call goes through; the style only decides which policies it holds.

discovery -> balancer -> circuit breaker -> retry -> timeout/deadline -> bulkhead, each a small object
with the same `__call__(request, call_next)` shape (the idea of httpx's transport and of pybreaker's and
tenacity's small policy objects), composed by `presets.build_client`.
"""
