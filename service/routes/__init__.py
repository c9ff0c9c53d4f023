"""One router module per resource: score, prioritize, model, health, admin."""
