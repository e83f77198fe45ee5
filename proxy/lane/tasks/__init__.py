"""One file per background job kind, each a small callable with exactly its collaborators."""
