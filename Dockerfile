# The chiso766 worker / API / CLI image used by docker-compose.yml (production-like stack).
FROM python:3.11-slim
WORKDIR /app
# Exactly the packages of requirements.lock, hash-checked, as deploy/setup-python.sh installs them; this
# layer is reused until the lock changes. Then the project itself, without dependencies: its build
# backend (setuptools) is in the lock too.
COPY requirements.lock ./
RUN pip install --no-cache-dir --disable-pip-version-check --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY schemas schemas
COPY scoring scoring
COPY contracts contracts
COPY support support
COPY streams streams
COPY cli cli
COPY api api
COPY bench bench
COPY deploy deploy
RUN pip install --no-cache-dir --disable-pip-version-check --no-deps --no-build-isolation . \
    && rm -rf build chiso766.egg-info
# Workers keep their tables' local state (rocksdb://) under CHISO766_DATA: the only place the
# unprivileged runtime user writes, so it is made and handed to that user here.
ENV CHISO766_METRICS_HOST=0.0.0.0 CHISO766_DATA=/var/lib/chiso766
RUN mkdir -p /var/lib/chiso766 && chown nobody:nogroup /var/lib/chiso766
USER nobody
ENTRYPOINT []
