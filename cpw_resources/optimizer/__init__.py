"""The optimizer: which Whisper config a title's audio needs (features → candidates → choice)."""
