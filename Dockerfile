# Flowyard's image: the server, the workers and the engine that runs flows.
#   docker build -t flowyard .                      (FROM python:3.11-slim-bookworm)
#   docker build --network host --build-arg BASE=local/debian-py:bookworm -t flowyard .
# The base needs python3 with venv; everything runs as an unprivileged user. Behind a
# TLS-intercepting proxy, put its CA bundle next to this file as build-ca.pem.
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE} AS dependencies
ENV VIRTUAL_ENV=/opt/flowyard \
    PATH=/opt/flowyard/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python3 -m venv /opt/flowyard
WORKDIR /build
# Dependencies first, from pyproject.toml alone: this layer is reused until they change.
COPY pyproject.toml README.md build-ca.pe[m] ./
RUN if [ -f build-ca.pem ]; then mv build-ca.pem /opt/flowyard/ \
        && printf '[global]\ncert = /opt/flowyard/build-ca.pem\n' > /opt/flowyard/pip.conf; fi \
    && mkdir -p src/flowyard && touch src/flowyard/__init__.py \
    && pip install -q ".[postgres,all]" && pip uninstall -q -y flowyard && rm -rf src build

FROM dependencies
COPY src ./src
RUN pip install -q --no-deps . && rm -rf /build /opt/flowyard/pip.conf /opt/flowyard/build-ca.pem \
    && useradd --create-home --uid 10001 --user-group flowyard
USER 10001
WORKDIR /home/flowyard
EXPOSE 4200
CMD ["flowyard", "server", "start", "--host", "0.0.0.0"]
