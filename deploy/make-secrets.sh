#!/bin/sh
# Random secrets for deploy/compose.yaml, written once (existing files are kept: rotate one
# by deleting it and following README "Rotating the signing key and registry credentials").
set -eu
dir="$(dirname "$0")/secrets"
mkdir -p "$dir"
chmod 700 "$dir"
for name in db_password mlflow_admin_password mlflow_flask_secret churn_trainer_password \
    churn_server_password churn_signing_key churn_api_keys; do
  [ -s "$dir/$name" ] && continue
  (umask 077 && openssl rand -hex 32 > "$dir/$name")
  echo "wrote $dir/$name"
done
