"""The deployment's pseudonym secret (the key of officers' pseudonymous ids)."""

from __future__ import annotations

from collections.abc import Mapping

SECRET_ENV = "CHISO766_PSEUDONYM_SECRET"
# For the demo and the tests only, and named so that nobody mistakes it for a secret.
DEMO_SECRET = "chiso766-DEMO-ONLY-not-a-secret-pseudonym-key"


class MissingSecret(RuntimeError):
    pass


def pseudonym_secret(environ: Mapping[str, str], demo: bool = False) -> str:
    """The secret from CHISO766_PSEUDONYM_SECRET (16 bytes at least). Without it only the demo may
    run, with DEMO_SECRET: a real deployment never pseudonymises with a key everybody knows."""
    secret = environ.get(SECRET_ENV, "")
    if secret:
        if len(secret.encode()) < 16:
            raise MissingSecret(f"{SECRET_ENV} must be at least 16 bytes long")
        return secret
    if demo:
        return DEMO_SECRET
    raise MissingSecret(f"{SECRET_ENV} is not set: officers' names are pseudonymised with this deployment"
                        " secret (at least 16 bytes, e.g. `openssl rand -hex 32`); --demo uses a published"
                        " demo key, for demos and tests only")
