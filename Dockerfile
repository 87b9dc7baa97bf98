# Unified MLOps MCP server for ECS Fargate (or any container runtime).
#
# Default: MCP streamable HTTP on 0.0.0.0:8080 (`/mcp`, health at `/healthz`), which refuses to
# start without a token (MLOPS_HTTP_TOKEN, or the secret <MLOPS_SECRETS_PREFIX>http-token):
#   docker build -t unified-mlops-mcp .
#   docker run --rm -p 8080:8080 -e MLOPS_HTTP_TOKEN=... -e MLOPS_S3_BUCKET=my-ml-bucket \
#     -e AWS_REGION=eu-west-1 unified-mlops-mcp     # then http://localhost:8080/mcp
# Clients reaching it under another name need that name in MLOPS_ALLOWED_HOSTS.
# stdio instead, attached to the client's pipes (no health check applies then):
#   docker run -i --rm --no-healthcheck -e MLOPS_S3_BUCKET=my-ml-bucket unified-mlops-mcp --transport stdio
# No secret is baked in: on Fargate the task definition injects the token from Secrets Manager and
# the task role gives S3 / Secrets Manager / SageMaker access (deploy/ecs-fargate.yaml).
# Docker cannot run where this repo is tested; .ci/check-images resolves these install steps.
FROM python:3.11-slim

# The CPU build of torch (PyPI's Linux torch is the CUDA build with several GB of NVIDIA
# libraries); point it at a mirror with --build-arg TORCH_INDEX_URL=...
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG TORCH_VERSION=2.13.0

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RLLIB_TEST_NO_TF_IMPORT=1 \
    TF_CPP_MIN_LOG_LEVEL=3 \
    MLOPS_STORAGE_ROOT=/data/storage

# libgomp1: the OpenMP runtime XGBoost's wheel links against; slim images do not ship it.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# torch first, pinned, from the CPU index; requirements.txt pins the same version, which the +cpu
# build already satisfies, so nothing pulls the CUDA build afterwards.
RUN pip install --index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}"
COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY mcp_server ./mcp_server
# Byte-compile now: the container starts from a fresh filesystem every time, and PYTHONPATH=/app
# makes `python -m mcp_server` work from any working directory.
RUN python -m compileall -q mcp_server

RUN useradd --create-home --uid 10001 mlops \
    && mkdir -p /data/storage \
    && chown -R mlops:mlops /data
USER mlops

# Local storage (used when MLOPS_S3_BUCKET is unset); mount a volume here to keep it.
VOLUME ["/data"]
EXPOSE 8080

# Really asks the server: /healthz answers only once the router is built and the app serves.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]

ENTRYPOINT ["python", "-m", "mcp_server"]
CMD ["--transport", "http", "--host", "0.0.0.0", "--port", "8080"]
