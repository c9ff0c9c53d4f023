# Two images from one file, both installed from the lock (constraints.txt):
#   docker build --target serve -t churn .        # `churn serve`: no shap, no matplotlib
#   docker build --target train -t churn-train .  # `churn train` / `churn retrain`
#   docker build --target train --build-arg EXTRAS=dask -t churn-dask .  # + Dask workers
FROM python:3.11-slim AS build
RUN python -m venv /opt/serve && python -m venv /opt/train
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY features features
COPY models models
COPY training training
COPY service service
ARG EXTRAS=""
RUN /opt/serve/bin/python -m pip install --quiet --no-cache-dir -c constraints.txt . \
    && /opt/train/bin/python -m pip install --quiet --no-cache-dir -c constraints.txt \
       ".[training${EXTRAS:+,$EXTRAS}]"

FROM python:3.11-slim AS runtime
# libgomp: LightGBM's OpenMP runtime.
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 churn
COPY deploy/entrypoint.sh /usr/local/bin/churn-entrypoint
ENV CHURN_HOME=/home/churn/.churn PYTHONUNBUFFERED=1
USER churn
WORKDIR /home/churn
ENTRYPOINT ["/usr/local/bin/churn-entrypoint"]

FROM runtime AS train
COPY --from=build /opt/train /opt/train
ENV PATH=/opt/train/bin:$PATH
CMD ["churn", "retrain", "--data", "/data"]

FROM runtime AS serve
COPY --from=build /opt/serve /opt/serve
ENV PATH=/opt/serve/bin:$PATH
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=60s \
  CMD python -c "import sys,urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2).status != 200)"
# On 0.0.0.0 it needs CHURN_API_KEYS[_FILE] (or CHURN_ALLOW_ANONYMOUS=true behind a gateway).
CMD ["churn", "serve", "--host", "0.0.0.0", "--port", "8000"]
