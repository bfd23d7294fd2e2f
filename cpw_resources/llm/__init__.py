"""LLMs: providers behind one interface, the batch engine, prompts and prices."""
