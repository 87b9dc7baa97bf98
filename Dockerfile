# Unified MLOps MCP server for ECS Fargate (or any container runtime).
#
# The server speaks MCP over stdio: run it attached to the MCP client's pipes, e.g.
#   docker build -t unified-mlops-mcp .
#   docker run -i --rm -e MLOPS_S3_BUCKET=my-ml-bucket -e AWS_REGION=eu-west-1 unified-mlops-mcp
# On Fargate, give the task role S3 (and, if used, Secrets Manager / KMS) permissions instead of
# passing keys: boto3 picks the role up from the container credentials endpoint.
FROM python:3.11-slim

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

# torch first, pinned, from PyTorch's CPU index: from PyPI, torch (or an unpinned torch pulled in
# by another package) is the CUDA build with several GB of NVIDIA libraries. requirements.txt
# pins the same version, which the +cpu build already satisfies.
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch==2.13.0"
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

ENTRYPOINT ["python", "-m", "mcp_server"]
