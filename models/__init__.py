"""The model bundle: ChurnModel (features + booster + calibrator + metadata) and its MLflow wrapper."""
