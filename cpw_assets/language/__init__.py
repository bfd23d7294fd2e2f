"""Assets of the language group: ``glossary``, ``translation``, ``enhanced_translation``."""
