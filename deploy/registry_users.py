"""Create (or update the passwords of) the registry's two Churn users, as the MLflow admin.

churn-trainer registers models and moves the champion alias (it creates the experiment and
the registered model, so it manages them); churn-server reads (MLflow's default permission).
Run by the compose stack's `registry-users` one-shot; idempotent.
"""

import os
from pathlib import Path

from mlflow.server import get_app_client

SECRETS = Path("/run/secrets")


def secret(name: str) -> str:
    return (SECRETS / name).read_text().strip()


def main() -> None:
    os.environ["MLFLOW_TRACKING_USERNAME"] = "admin"
    os.environ["MLFLOW_TRACKING_PASSWORD"] = secret("mlflow_admin_password")
    client = get_app_client("basic-auth", tracking_uri=os.environ["MLFLOW_TRACKING_URI"])
    for user, password in (
        ("churn-trainer", secret("churn_trainer_password")),
        ("churn-server", secret("churn_server_password")),
    ):
        try:
            client.get_user(user)
        except Exception:
            client.create_user(user, password)
        else:
            client.update_user_password(user, password)


if __name__ == "__main__":
    main()
