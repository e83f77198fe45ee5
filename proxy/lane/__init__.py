"""The background lane: slow AI work (alt text, fingerprints, moderation, QA sampling) runs
after the response, from a durable job queue in the store."""
