# churn serve in a slim image: the package and its runtime dependencies, no dev tools.
FROM python:3.11-slim AS build
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY features features
COPY models models
COPY training training
COPY service service
RUN python -m pip install --quiet --upgrade pip && python -m pip install --quiet .

FROM python:3.11-slim
# libgomp: LightGBM's OpenMP runtime.
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 churn
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH CHURN_HOME=/home/churn/.churn PYTHONUNBUFFERED=1
USER churn
WORKDIR /home/churn
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=60s \
  CMD python -c "import sys,urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2).status != 200)"
# On 0.0.0.0 it needs CHURN_API_KEYS[_FILE] (or CHURN_ALLOW_ANONYMOUS=true behind a gateway).
CMD ["churn", "serve", "--host", "0.0.0.0", "--port", "8000"]
