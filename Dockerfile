# The chiso766 worker / API / CLI image used by docker-compose.yml (production-like stack).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas schemas
COPY scoring scoring
COPY streams streams
COPY cli cli
COPY api api
COPY bench bench
COPY deploy deploy
RUN pip install --no-cache-dir ".[stream,api]"
ENV CHISO766_METRICS_HOST=0.0.0.0 CHISO766_DATA=/var/lib/chiso766
USER nobody
ENTRYPOINT []
