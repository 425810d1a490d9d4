# syntax=docker/dockerfile:1
# orderflow: one image for every process (ingress, worker, migrate, localnet).
#   docker build -t orderflow:latest .
#   docker run --rm orderflow:latest --help
# Dependencies are installed at the versions pinned in constraints.txt
# (`make constraints` regenerates it). No secret is baked in: the wallet is a file
# mounted at run time and named by ORDERFLOW_WALLET.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/orderflow
WORKDIR /src
COPY constraints.txt pyproject.toml README.md ./
COPY orderflow ./orderflow
COPY pipeline ./pipeline
COPY ingress ./ingress
COPY sinks ./sinks
COPY localnet ./localnet
COPY dexmath ./dexmath
RUN /opt/orderflow/bin/pip install -c constraints.txt . \
    && /opt/orderflow/bin/orderflow --help >/dev/null

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/orderflow/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ORDERFLOW_HTTP_HOST=0.0.0.0 \
    ORDERFLOW_DATA_DIR=/var/lib/orderflow \
    ORDERFLOW_UI_DIR=/opt/orderflow-ui
RUN groupadd --system --gid 10001 orderflow \
    && useradd --system --uid 10001 --gid orderflow --no-create-home \
       --home-dir /var/lib/orderflow --shell /usr/sbin/nologin orderflow \
    && install -d -o orderflow -g orderflow -m 0750 /var/lib/orderflow
COPY --from=build /opt/orderflow /opt/orderflow
COPY ui /opt/orderflow-ui
USER orderflow:orderflow
WORKDIR /var/lib/orderflow
EXPOSE 3000 8090 8899 9100
ENTRYPOINT ["orderflow"]
CMD ["--help"]
