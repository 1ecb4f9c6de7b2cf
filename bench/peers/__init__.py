"""Peers: the same job written with another stream-processing library, run on the same topic."""
