"""The hotline: staff hand a caller to the assistant (handoff links) and take a stuck user
back from it (tickets), from the staff console or the shell."""
