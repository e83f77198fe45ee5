"""Quality assurance of what the server produces: automatic checks on every output, and the
stratified choice of the few sources a human reviews."""
