# The registry: `mlflow server --app-name basic-auth` on PostgreSQL, versions from the lock.
FROM python:3.11-slim
COPY constraints.txt /tmp/constraints.txt
RUN python -m pip install --quiet --no-cache-dir -c /tmp/constraints.txt "mlflow[auth]" psycopg2-binary \
    && useradd --create-home --uid 10002 mlflow && mkdir -p /mlflow/artifacts && chown -R mlflow /mlflow
COPY deploy/registry.sh /usr/local/bin/registry.sh
USER mlflow
EXPOSE 5000
ENTRYPOINT ["/usr/local/bin/registry.sh"]
