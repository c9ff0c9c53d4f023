"""The FastAPI scoring service and the `churn` command line."""
