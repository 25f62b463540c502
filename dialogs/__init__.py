"""What the assistant says and asks: flows as data and the one engine that runs them.

Imports `knowledge`, never `bot` and never a channel library.
"""
