# syntax=docker/dockerfile:1.7
#
# Apache Airflow as airflow/requirements.txt pins it, the newsrec_pipeline DAG
# (airflow/dags/) and the `newsrec` binary its tasks call. Built from the repository
# root by compose/docker-compose.yml (profile `airflow`):
#   docker build -f compose/airflow.Dockerfile -t newsrec-airflow .
#
# The build stage is compose/Dockerfile's, with the same BuildKit cache mounts, so the
# two images share one compiled workspace.
ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=trixie

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends cmake \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin newsrec \
    && install -D -m 0755 target/release/newsrec /out/newsrec

# CPython 3.11 on the same Debian release as the toolchain image (the binary's glibc).
# The user is the newsrec image's (uid 10001), so both images own the shared volumes.
FROM python:3.11-slim-${DEBIAN_RELEASE} AS runtime
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 newsrec \
    && useradd --system --uid 10001 --gid newsrec --home-dir /opt/airflow --shell /usr/sbin/nologin newsrec \
    && install -d -o newsrec -g newsrec /opt/airflow /opt/airflow/logs \
       /var/lib/newsrec /var/lib/newsrec/raw /var/lib/newsrec/data /var/lib/newsrec/models
COPY airflow/requirements.txt /opt/airflow/requirements.txt
RUN pip install --no-cache-dir --disable-pip-version-check -r /opt/airflow/requirements.txt
COPY --from=build /out/newsrec /usr/local/bin/newsrec
COPY airflow/dags /opt/airflow/dags
ENV AIRFLOW_HOME=/opt/airflow \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/airflow/dags \
    NEWSREC_BIN=/usr/local/bin/newsrec
USER newsrec
WORKDIR /opt/airflow
VOLUME ["/opt/airflow/logs", "/var/lib/newsrec/raw", "/var/lib/newsrec/data", "/var/lib/newsrec/models"]
EXPOSE 8080 8974
ENTRYPOINT ["airflow"]
CMD ["version"]
