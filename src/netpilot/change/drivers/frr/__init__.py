"""FRR: configuration rendered from the twin, a lab of namespaces running it, its telemetry, explicit paths as
policy routing, and the driver that changes it commit-confirmed."""
