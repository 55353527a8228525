# logalyse in a container: `docker build -t logalyse .` (or `make docker`), then see
# deploy/compose.yaml for nginx writing its log to a volume that logalyse tails.
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY logalyse ./logalyse
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

FROM python:3.12-slim
# A user of its own: the database and its day keys are its files, nobody else's.
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/logalyse --create-home logalyse \
    && mkdir -p /srv/stats && chown logalyse:logalyse /srv/stats
COPY --from=build /dist/ /tmp/dist/
RUN pip install --no-cache-dir /tmp/dist/*.whl && rm -rf /tmp/dist
USER logalyse
ENV XDG_DATA_HOME=/var/lib \
    LOGALYSE_DB=/var/lib/logalyse/logalyse.duckdb \
    PYTHONUNBUFFERED=1
VOLUME ["/var/lib/logalyse"]
WORKDIR /var/lib/logalyse
ENTRYPOINT ["logalyse"]
CMD ["--help"]
