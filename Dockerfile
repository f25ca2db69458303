# syntax=docker/dockerfile:1
# remediator image: build with every dependency, run with production ones only, as the unprivileged `node` user,
# under tini so SIGTERM reaches node (graceful worker shutdown) and zombies are reaped.
#   docker build -t remediator .
#   docker run --rm -p 9095:9095 -e REDIS_URL=redis://redis:6379 -e PROMETHEUS_URL=http://prometheus:9090 remediator
# Test tests/unit/deploy/dockerfile.test.ts lints these properties (no Docker engine runs in CI).

ARG NODE_IMAGE=node:20-bookworm-slim

# 1. build: all dependencies (TypeScript), compile src → dist.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# 2. prod-deps: production dependencies only, nothing from the build stage.
FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# 3. runtime: compiled code, production node_modules, the shipped rules. Files stay root-owned (read-only to the app).
FROM ${NODE_IMAGE} AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
# A young generation of 2 × 2 MiB instead of V8's 2 × 16 MiB: about 20 MiB less resident per Node process, idle and
# busy; one V8 background thread instead of four: 3-5 MiB less, and no slower on two cores (docs/benchmark.md,
# "Memory", "V8's worker thread pool"). serve's receivers inherit both.
ENV NODE_ENV=production \
    NODE_OPTIONS="--max-semi-space-size=2 --v8-pool-size=1" \
    PORT=9095 \
    RULES_DIR=/app/rules
WORKDIR /app
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY rules ./rules
USER node
EXPOSE 9095
# Kubernetes ignores HEALTHCHECK and uses the chart's probes on the same endpoints (/healthz, /readyz). The same image
# runs `remediator exporter` (a supervisor's sidecar) on EXPORTER_PORT: whichever of the two answers /healthz.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD ["node", "-e", "Promise.any([process.env.PORT || 9095, process.env.EXPORTER_PORT || 9466].map((p) => fetch('http://127.0.0.1:' + p + '/healthz').then((r) => r.ok || Promise.reject()))).then(() => process.exit(0), () => process.exit(1))"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--", "node", "dist/cli.js"]
CMD ["serve"]
