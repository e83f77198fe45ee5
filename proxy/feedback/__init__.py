"""Human decisions as data: collaboration metrics and the exportable feedback set."""
