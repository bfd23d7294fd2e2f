"""Speech: decoding media, audio fingerprints, Whisper models and transcription, slots."""
