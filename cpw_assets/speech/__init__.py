"""Assets of the speech group: ``media``, ``audio``, ``transcript``."""
