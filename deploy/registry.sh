#!/bin/sh
# Start MLflow with basic auth on PostgreSQL; passwords are read from the secret files here
# and passed in the environment (never on the command line, where `ps` would show them).
set -eu
db_password="$(cat /run/secrets/db_password)"
export MLFLOW_BACKEND_STORE_URI="postgresql+psycopg2://mlflow:${db_password}@db:5432/mlflow"
export MLFLOW_AUTH_ADMIN_USERNAME=admin
MLFLOW_AUTH_ADMIN_PASSWORD="$(cat /run/secrets/mlflow_admin_password)"
MLFLOW_FLASK_SERVER_SECRET_KEY="$(cat /run/secrets/mlflow_flask_secret)"
export MLFLOW_AUTH_ADMIN_PASSWORD MLFLOW_FLASK_SERVER_SECRET_KEY
config="$(mktemp)"
cat > "$config" <<INI
[mlflow]
default_permission = READ
database_uri = postgresql+psycopg2://mlflow:${db_password}@db:5432/mlflow_auth
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
INI
export MLFLOW_AUTH_CONFIG_PATH="$config"
exec mlflow server --app-name basic-auth --host 0.0.0.0 --port 5000 \
  --artifacts-destination /mlflow/artifacts --workers 2
