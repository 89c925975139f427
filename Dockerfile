# The router's container image: `router serve` on $PORT, as a non-root user, under tini.
#
#   docker build -t adrouter .            # or: podman build --format docker -t adrouter .
#   docker run -p 8080:8080 -e QUEUE_URL=postgresql://... adrouter
#
# BASE is any Debian-based image with `python3` (3.11+) and apt-get: the default is the official slim
# image; deploy/check-image.sh builds on a local Debian bookworm rootfs instead (--build-arg BASE=...).
# Both stages use the same BASE, so the virtualenv copied across finds its interpreter at the same path.
ARG BASE=python:3.12-slim

# --- build: a virtualenv holding the router and its runtime dependencies only ---------------------
FROM ${BASE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /opt/venv
WORKDIR /src
# The dependencies come from pyproject.toml's [project] dependencies (never the test extra), in a
# layer of their own that is rebuilt only when pyproject.toml changes.
COPY pyproject.toml ./
RUN python3 -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies'], sep='\n')" \
        > requirements.txt \
    && /opt/venv/bin/pip install --requirement requirements.txt
# The compile toolchain for the hot-path modules (router/native.py), in this stage only: a C compiler,
# the Python headers when the base lacks them (Debian's python3; the official images ship them), and
# pyproject.toml's `compile` extra (mypy, whose mypyc compiles, its stubs, setuptools), kept apart in
# /opt/buildtools so that the virtualenv copied across holds runtime packages only.
RUN apt-get update \
    && apt-get install --yes --no-install-recommends gcc libc6-dev \
    && { python3 -c "import os, sys, sysconfig; sys.exit(not os.path.exists(sysconfig.get_paths()['include'] + '/Python.h'))" \
        || apt-get install --yes --no-install-recommends python3-dev; } \
    && python3 -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['compile'], sep='\n')" \
        > compile-requirements.txt \
    && /opt/venv/bin/pip install --target /opt/buildtools --requirement compile-requirements.txt
COPY README.md setup.py ./
COPY router ./router
COPY destinations ./destinations
# ADROUTER_COMPILE=1: setup.py compiles the hot-path modules with mypyc (bench/README.md has the
# measure); `router.native` then fails the build unless each runs compiled (-P: not from /src's sources).
# pip and setuptools (which Debian's venv seeds) are not needed to run the router: out they go.
RUN PYTHONPATH=/opt/buildtools ADROUTER_COMPILE=1 \
        /opt/venv/bin/pip install --no-deps --no-build-isolation . \
    && /opt/venv/bin/pip uninstall --yes setuptools pip \
    && /opt/venv/bin/python -P -m router.native

# --- run: the base, tini, the virtualenv and the default config; no compilers, no caches ------------
FROM ${BASE}
# tini is PID 1: it forwards SIGTERM to the router (which then drains: 3 s for open requests, 4 s for
# in-flight deliveries) and reaps zombies. uvicorn re-raises the SIGTERM it handled once it has shut
# down cleanly, so the router then ends "killed by SIGTERM" (143): `-e 143` reports that as 0.
RUN apt-get update \
    && apt-get install --yes --no-install-recommends tini \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
    && useradd --user-group --uid 10001 --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin router
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# config/router.yaml is the default `router serve` reads (ROUTER_CONFIG or --config picks another file,
# e.g. one mounted from a secret); ./var is where its default SQLite queue lives, owned by the router.
COPY config ./config
RUN mkdir var && chown router:router var
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LOG_FORMAT=json
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8080'), timeout=2)"]
ENTRYPOINT ["tini", "-e", "143", "--"]
CMD ["router", "serve"]
