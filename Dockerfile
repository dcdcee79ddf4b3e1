# mdmtune: one image for the API and the workers.
#   CPU (default):  docker build -t mdmtune .
#   CUDA:           docker build -t mdmtune:cuda --build-arg TORCH_INDEX=https://pypi.org/simple .
# Where torch comes from decides its build: PyTorch's CPU index has the CPU wheel of every release; PyPI's Linux
# x86_64 wheel of the same pinned version is the CUDA build (its CUDA runtime comes as nvidia-* wheels), so no
# cuXYZ index name has to match the pin. The GPU itself comes from the NVIDIA container toolkit at run time
# (docker-compose.yml reserves one for the worker).
FROM python:3.11-slim

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ARG TORCH_VERSION=2.13.0

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/mdmtune

# torch first, from TORCH_INDEX, so that installing mdmtune keeps that build instead of pulling PyPI's.
RUN pip install --index-url "${TORCH_INDEX}" "torch==${TORCH_VERSION}"

COPY pyproject.toml README.md ./
COPY mdmtune ./mdmtune
COPY examples ./examples
RUN pip install ".[hf,math]"

# bubblewrap confines the code pass_at_1 runs (a model's completions, an eval set's tests): its namespaces need
# docker-compose.yml's security_opt on the worker. `mdmtune sandbox check` in the container says what is in force.
RUN apt-get update && apt-get install -y --no-install-recommends bubblewrap && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 mdmtune && mkdir -p /data /artifacts && chown mdmtune /data /artifacts
USER mdmtune

ENV MDMTUNE_DATA_DIR=/data \
    MDMTUNE_ARTIFACT_DIR=/artifacts \
    MDMTUNE_HOST=0.0.0.0 \
    MDMTUNE_PORT=8000

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"

# The API node by default (no in-process worker); workers run `mdmtune worker` (docker-compose.yml).
CMD ["mdmtune", "serve", "--workers", "0"]
