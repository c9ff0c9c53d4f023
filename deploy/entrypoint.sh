#!/bin/sh
# Secrets arrive as files; MLflow reads its password only from the environment:
# MLFLOW_TRACKING_PASSWORD_FILE -> MLFLOW_TRACKING_PASSWORD, then run the command.
set -eu
if [ -n "${MLFLOW_TRACKING_PASSWORD_FILE:-}" ]; then
  MLFLOW_TRACKING_PASSWORD="$(cat "$MLFLOW_TRACKING_PASSWORD_FILE")"
  export MLFLOW_TRACKING_PASSWORD
fi
exec "$@"
