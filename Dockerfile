# syntax=docker/dockerfile:1
# Leveret, an AMQP 0-9-1 broker. Build: docker build -t leveret .   (see docs/docker.md)
#
# Both stages use the same Node 20 LTS image: the build needs nothing beyond node, npm and
# coreutils. scripts/build-image-root.sh is the one description of the runtime files; the test
# test/image-layout.test.ts runs the same script and starts the broker from its output.
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY . .
# Compiles TypeScript in a scratch copy, installs production dependencies only, and lays out
# /out/app (package.json, lock file, dist/, node_modules/) and /out/var/lib/leveret.
RUN scripts/build-image-root.sh /out

FROM ${NODE_IMAGE}
LABEL org.opencontainers.image.title="Leveret" \
      org.opencontainers.image.description="An AMQP 0-9-1 message broker for RabbitMQ clients, in TypeScript on Node.js" \
      org.opencontainers.image.licenses="MIT"

COPY --from=build /out/ /
# A fixed uid/gid, so a volume or bind mount can be prepared for it on the host
# (chown 10001:10001). /app stays root's: the broker cannot rewrite its own code.
RUN groupadd --gid 10001 leveret \
 && useradd --uid 10001 --gid leveret --home-dir /var/lib/leveret --no-create-home \
      --shell /usr/sbin/nologin leveret \
 && chown leveret:leveret /var/lib/leveret

# Every setting is a LEVERET_* variable (docker run --rm leveret --help lists them).
# LEVERET_LOOPBACK_USERS is empty because clients reach a container from outside its loopback
# interface: like RabbitMQ's official image, guest may log in from anywhere. Set
# LEVERET_DEFAULT_USER / LEVERET_DEFAULT_PASS for anything but a trial (they apply when the
# data directory holds no users yet).
ENV NODE_ENV=production \
    LEVERET_DATA_DIR=/var/lib/leveret \
    LEVERET_HOST=0.0.0.0 \
    LEVERET_PORT=5672 \
    LEVERET_HTTP_PORT=15672 \
    LEVERET_LOG_LEVEL=info \
    LEVERET_LOOPBACK_USERS=""

VOLUME /var/lib/leveret
# AMQP, AMQPS (when LEVERET_TLS_CERT and LEVERET_TLS_KEY are set), the management API / dashboard / Prometheus, and HTTPS for the API (with TLS).
EXPOSE 5672 5671 15672 15671

# Every /api/health/* endpoint needs credentials, which an image cannot know once an operator
# changes them. The Prometheus endpoint needs none; /metrics/detailed without a family renders
# only the build-info lines, so a check costs the same with a million queues as with none.
# It proves the process is up, its event loop answers, and recovery is over (HTTP listens
# after the store is recovered). node itself makes the request: the slim image has no curl.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.LEVERET_HTTP_PORT||15672)+'/metrics/detailed',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

USER 10001:10001
WORKDIR /app
# node is PID 1, without tini: Leveret installs its own SIGTERM and SIGINT handlers (close
# every client with 320, sync the store, exit 0), so the kernel's "PID 1 ignores signals it
# does not handle" rule does not bite, and it starts no child processes, so there are no
# zombies to reap. Shutdown may take up to 10 s: stop with a longer grace (docker stop -t 30).
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/dist/cli.js"]
