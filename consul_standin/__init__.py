"""A small, in-memory stand-in for the Consul agent HTTP API, for machines where no Consul binary can be installed.

Cloud-style replicas talk to it through the real py-consul client, so it implements exactly the subset of the
API they use, with Consul's documented semantics: agent service registration with HTTP (and TCP) checks that
really run in the background, the health endpoint with `?passing`, KV with CAS, and blocking queries on both.
It says it is a stand-in wherever that is visible: the start-up log line and `Config.Version` in
`/v1/agent/self` (suffix "-standin").

Where it knowingly differs from a real `consul agent -dev`:

- `DeregisterCriticalServiceAfter` is honoured for any value; Consul enforces a 1 minute minimum and reaps every
  30 s. The stand-in's reaper runs every second (`--reap-interval`), so short benchmark outages can be measured.
- A blocking query whose `index` is greater than the current index returns at once (real servers block until
  their index passes it). After a stand-in restart the indexes start over, and this lets a client see the index
  go backwards and reset, as the blocking-query docs tell clients to do, instead of stalling a full wait.
- Indexes are per query result: the health index of a service moves only when that service's registration or a
  check status changes, a KV index only when a matching key is written or deleted. A name or key that never
  existed has index 1. Check output changing without a status change does not move the index (Consul defers such
  writes by `check_update_interval`, 5 min by default).
- Only HTTP and TCP checks; TTL, script, gRPC, Docker, H2PING, UDP and alias checks are refused with 400.
  Sessions (`?acquire`/`?release`), ACLs, `?filter`, Connect, prepared queries and other datacenters are absent.
- State lives in memory and is lost on exit, like `-dev` mode. There is one node, named after the host.
"""
