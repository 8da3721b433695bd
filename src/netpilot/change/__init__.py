"""Act safely: intents, change sets, verification on the twin, approval workflow, drivers."""
