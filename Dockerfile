# Refine server image. Build: docker build -t refine .   Run: docker compose up

# ---- web client ----------------------------------------------------------------
FROM node:20-bookworm-slim AS web

WORKDIR /src/web-client
COPY web-client/package.json web-client/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web-client/ ./
RUN npm run build

# ---- build stage -------------------------------------------------------------
FROM debian:12-slim AS build

# Same package set as `scripts/start` uses, from the same script.
COPY scripts/install-deps /usr/local/bin/refine-install-deps
RUN refine-install-deps run && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .
# The built client, which the server's build embeds (the binary serves it).
COPY --from=web /src/web-client/dist/ /src/web-client/dist/
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release \
    && cmake --build build -j"$(nproc)" --target refine-server \
    && strip build/refine-server

# ---- runtime stage -----------------------------------------------------------
FROM debian:12-slim

# Runtime libraries only (libwebsockets-evlib-uv is the plugin libwebsockets
# loads for the libuv foreign loop), plus curl for the health check.
RUN apt-get update -q \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        libuv1 libwebsockets17 libwebsockets-evlib-uv libmsgpackc2 libsqlite3-0 libssl3 curl \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --system --user-group --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin refine \
    && mkdir -p /data \
    && chown refine:refine /data

# The web client is built into the binary: nothing else to copy.
COPY --from=build /src/build/refine-server /usr/local/bin/refine-server

ENV REFINE_DB=/data/refine.db \
    REFINE_PORT=8080

# Declared after the chown so a new named volume starts owned by `refine`.
VOLUME /data
WORKDIR /data
USER refine
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD curl -fsS "http://localhost:${REFINE_PORT:-8080}/healthz" || exit 1

CMD ["refine-server"]
