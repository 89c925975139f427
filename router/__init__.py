"""The router: ingest, normalize, queue and dispatch of ad conversion events."""
