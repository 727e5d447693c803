# lifeboat: high availability for OpenStack compute nodes.
#
#   docker build -t lifeboat .
#   docker run -d --name lifeboat -p 9095:9095 \
#     -v /etc/lifeboat/config.yaml:/etc/lifeboat/config.yaml:ro \
#     -v lifeboat-state:/var/lib/lifeboat \
#     -v /etc/lifeboat/secrets:/run/secrets/lifeboat:ro \
#     lifeboat
#   docker exec lifeboat node /app/dist/cli.js doctor --config /etc/lifeboat/config.yaml
#
# - Config: mounted at /etc/lifeboat/config.yaml. Give secrets as `*_file:` paths to mounted
#   files or as ${VARIABLES} passed with -e, never baked into the image.
# - Listen address: LIFEBOAT_LISTEN (0.0.0.0:9095 here) when the config says
#   `listen: ${LIFEBOAT_LISTEN}` as config/example.yaml does. Another port: change
#   LIFEBOAT_LISTEN and LIFEBOAT_HEALTH_URL (what the HEALTHCHECK asks) together.
# - State: the SQLite store belongs in the volume, `store.path: ${LIFEBOAT_STATE_DIR}/lifeboat.db`
#   (as config/example.yaml has it). The process runs as uid/gid 10001: a bind-mounted state
#   directory must be writable by it.
# - Fencing tools: ipmitool is installed. libvirt fencing (labs) needs virsh:
#   --build-arg EXTRA_PACKAGES="libvirt-clients openssh-client" (about 60 MB more).
# - The example config, the Prometheus rules and the Grafana dashboard are in /app/config
#   and /app/rules; the default notification templates (to copy into notifications.templates)
#   in /app/dist/notify/templates.

ARG NODE_VERSION=20

# Compile the TypeScript (dev dependencies; no native builds needed for tsc). lifeboat only:
# the simulated site (packages/sandbox, a dev dependency) is not in the build context.
FROM node:${NODE_VERSION}-bookworm AS build
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build:lifeboat

# Production dependencies only (no simulated site, no mail parser); better-sqlite3 is built
# here, where the toolchain is.
FROM node:${NODE_VERSION}-bookworm AS deps
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force

# Runtime: small Debian-based Node 20, no compilers, no dev dependencies, not root.
FROM node:${NODE_VERSION}-bookworm-slim
ARG EXTRA_PACKAGES=""
RUN apt-get update \
 && apt-get install -y --no-install-recommends ipmitool ${EXTRA_PACKAGES} \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 lifeboat \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/lifeboat --no-create-home --shell /usr/sbin/nologin lifeboat \
 && mkdir -p /etc/lifeboat /var/lib/lifeboat \
 && chown lifeboat:lifeboat /var/lib/lifeboat
WORKDIR /app
# V8 sizes its heap from the memory it sees: on a large host a burst of alerts leaves ~200 MB
# of RSS, mostly garbage (lifeboat's live heap is ~35 MB). These caps keep it near 130 MB
# (bench/RESULTS.md, which runs every lifeboat process with the flags read from here).
ENV NODE_OPTIONS="--max-old-space-size=256 --max-semi-space-size=8"
ENV NODE_ENV=production \
    LIFEBOAT_STATE_DIR=/var/lib/lifeboat \
    LIFEBOAT_LISTEN=0.0.0.0:9095 \
    LIFEBOAT_HEALTH_URL=http://127.0.0.1:9095/healthz
COPY --from=deps /build/node_modules ./node_modules
COPY --from=build /build/dist ./dist
COPY package.json ./
COPY config ./config
COPY rules ./rules
USER 10001:10001
VOLUME ["/var/lib/lifeboat"]
EXPOSE 9095
# No curl in the slim image: Node's own fetch asks /healthz.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch(process.env.LIFEBOAT_HEALTH_URL, { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "/app/dist/cli.js"]
CMD ["serve", "--config", "/etc/lifeboat/config.yaml"]
