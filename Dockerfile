# LogMaster container image: `docker build -t logmaster .` (compose.yaml uses it).
# Stage 1 builds the web console; stage 2 is the Python runtime, run as a non-root user.

FROM node:20-bookworm-slim AS console
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
RUN PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
COPY web/ ./
RUN npm run build

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LOGMASTER_DATA_DIR=/var/lib/logmaster \
    LOGMASTER_CONSOLE__DIST_DIR=/opt/logmaster/web/dist
# openssl: `openssl ts -verify` / `openssl cms -verify` for independent checks of seals;
# postgresql-client: pg_dump for `logmaster backup` in PostgreSQL mode.
RUN apt-get update \
    && apt-get install -y --no-install-recommends openssl postgresql-client tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 logmaster \
    && useradd --system --uid 10001 --gid logmaster --home-dir /var/lib/logmaster \
       --shell /usr/sbin/nologin logmaster \
    && install -d -o logmaster -g logmaster -m 0750 /var/lib/logmaster
WORKDIR /opt/logmaster/src
COPY pyproject.toml constraints.txt README.md ./
COPY src/ ./src/
RUN python -m venv /opt/logmaster/venv \
    && /opt/logmaster/venv/bin/pip install -c constraints.txt . \
    && rm -rf /opt/logmaster/src
COPY --from=console /src/web/dist /opt/logmaster/web/dist
COPY deploy/ /opt/logmaster/deploy/
ENV PATH=/opt/logmaster/venv/bin:$PATH
WORKDIR /var/lib/logmaster
USER logmaster
VOLUME ["/var/lib/logmaster"]
# syslog UDP/TCP 514, TLS 6514, API 8080, metrics 9514 (collector), 9515 (indexer), 9516
# (sealer) and 9517 (API).
EXPOSE 514/udp 514/tcp 6514/tcp 8080/tcp 9514/tcp 9515/tcp 9516/tcp 9517/tcp
ENTRYPOINT ["logmaster"]
# Embedded mode (collector + indexer + API in one container); compose.yaml runs them apart.
CMD ["run"]
