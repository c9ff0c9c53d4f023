"""`python -m service.cli ...`: the same app as the `churn` entry point."""

from service.cli import app

if __name__ == "__main__":
    app()
