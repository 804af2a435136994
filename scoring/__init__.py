"""The functional core of chiso766: pure, deterministic, no I/O and no clock reads."""
