"""Delivery through a CDN: tags on image responses, and the purges that reach the edge."""
