"""The contracts between the worker and the read side: every Redis key and Lua script (`keys`), and the
typed messages workers, the projector, replay and the API exchange (`messages`). Imports nothing of the
project, so every layer may import it."""
