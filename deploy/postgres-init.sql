-- MLflow's users and permissions live in a database of their own (its own migrations).
CREATE DATABASE mlflow_auth;
