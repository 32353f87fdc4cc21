# syntax=docker/dockerfile:1
# The operator image:  docker build -t multisite-operator .
#
# Two stages on the same pinned base (Python 3.11 slim, Debian bookworm; the digest pins the multi-platform index):
# the package is built into a wheel from this repository, then installed without build tools into the runtime.
# `make image` builds it with podman, on a python:3.11-slim equivalent made from Debian packages where the official
# base cannot be pulled (`--build-arg PYTHON_IMAGE=...`), and tests/e2e/test_image.py runs it (see README).
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm@sha256:86adf8dbadc3d6e82ee5dd2c74bec2e1c2467cdad47886280501df722372d2e1

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip wheel --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
# The user is not called `operator`: Debian's base-passwd already has a group of that name (gid 37) in every
# bookworm image, and `useradd --user-group operator` fails there.
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels multisite-operator \
    && groupadd --gid 10001 multisite \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin multisite
# Numeric, so Kubernetes can check runAsNonRoot without reading /etc/passwd.
USER 10001:10001
# 8080: kopf's liveness endpoint (/healthz); 9090: Prometheus /metrics.
EXPOSE 8080 9090
# For `docker run`; Kubernetes ignores HEALTHCHECK and uses the Deployment's livenessProbe on the same endpoint.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
# The same command the tests and `make run` start (the console script is multisite_operator.cli:main).
ENTRYPOINT ["multisite-operator", "run"]
# Defaults: watch every namespace, liveness and metrics on the exposed ports, one JSON object per log line.
CMD ["--liveness", "http://0.0.0.0:8080/healthz", "--metrics-port", "9090", "--log-format", "json"]
