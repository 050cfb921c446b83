# syntax=docker/dockerfile:1
# One image for the three services: they share ~all of their dependencies (redfile-common),
# so one build, one scan and one tag to promote; the service it runs is chosen at start by
# SERVICE_NAME (auth, files, admin).  No development code: libs/dev (make run, the tests'
# helpers) is a workspace member that is never installed here.
# See docs/deploy.md.  Build: docker build -t redfile:local .
#
# Pin the base by digest in your registry mirror if you can:
#   --build-arg PYTHON_IMAGE=python:3.11.11-slim-bookworm@sha256:<digest>
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

# --- build: resolve from uv.lock into /app/.venv (no dev, deploy or bench groups) -------------
FROM ${PYTHON_IMAGE} AS build
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# The same uv as the Makefile (UV_VERSION).
RUN pip install --no-cache-dir "uv==0.13.9"
WORKDIR /src
# Third-party dependencies first: this layer is reused until uv.lock changes.
COPY pyproject.toml uv.lock ./
COPY libs/common/pyproject.toml libs/common/
# libs/dev's metadata only, so uv finds every workspace member; its code is never copied.
COPY libs/dev/pyproject.toml libs/dev/
COPY services/auth/pyproject.toml services/auth/
COPY services/files/pyproject.toml services/files/
COPY services/admin/pyproject.toml services/admin/
RUN uv sync --frozen --no-default-groups --no-install-workspace --python /usr/local/bin/python3
# Then Redfile itself, as regular (non-editable) packages.
COPY libs/common libs/common
COPY services services
RUN uv sync --frozen --no-default-groups --no-editable --python /usr/local/bin/python3

# --- runtime: the venv and an entry point, nothing else ----------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ARG REDFILE_UID=10001
RUN groupadd --system --gid "${REDFILE_UID}" redfile \
    && useradd --system --uid "${REDFILE_UID}" --gid redfile --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin redfile \
    && mkdir -p /var/lib/redfile/metrics \
    && chown redfile:redfile /var/lib/redfile/metrics
COPY --from=build /app/.venv /app/.venv
COPY --chmod=0755 deploy/docker/redfile-serve /usr/local/bin/redfile-serve
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=8000
USER ${REDFILE_UID}:${REDFILE_UID}
WORKDIR /app
EXPOSE 8000
ENTRYPOINT ["redfile-serve"]
