"""Training: datasets (observation dates, labels, splits), fit, evaluate, track in MLflow."""
