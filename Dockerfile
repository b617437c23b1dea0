# syntax=docker/dockerfile:1
#
# One image for every service. The build stage compiles the workspace and assembles the production folder
# with scripts/assemble-prod.mjs, the same script test/deploy/prod-folder.test.ts runs, so what the test
# starts is what the image holds. The runtime stage holds only that folder: compiled JavaScript and each
# service's production dependencies (no tsx, typescript, tap or playwright-core).
#
# The command picks the service (docker-compose.yml and infra/k8s set it):
#
#   docker run IMAGE node --conditions=compiled services/token/dist/server.js
#   docker run IMAGE node --conditions=compiled services/connections/dist/worker.js   # the follow-up worker
#   docker run IMAGE node --conditions=compiled cli/dist/cli.js seed                   # the operator CLI
#
# With no command the image runs the gateway.

# Pinned to an exact Node release on Debian 12. For reproducible builds pin the digest too, e.g.
#   --build-arg NODE_IMAGE=node:20.20.2-bookworm-slim@sha256:<digest>
# (`docker buildx imagetools inspect node:20.20.2-bookworm-slim` prints it); keep both stages on one image.
ARG NODE_IMAGE=node:20.20.2-bookworm-slim
ARG PNPM_VERSION=10.34.8

# ---- build: install from the lockfile, compile, assemble /prod -------------------------------------
FROM ${NODE_IMAGE} AS build
ARG PNPM_VERSION
ENV CI=true
RUN npm install --global --no-fund --no-audit pnpm@${PNPM_VERSION}
WORKDIR /src
# `pnpm fetch` needs only the lockfile, so this layer (the downloads) is rebuilt only when pnpm-lock.yaml
# changes. The store lives outside /src; the deploy step below installs from it (--prefer-offline: the legacy deploy re-resolves
# versions, for which pnpm fetch keeps no metadata).
COPY pnpm-lock.yaml pnpm-workspace.yaml ./
RUN pnpm fetch --store-dir /pnpm-store
COPY . .
# the full install: the build needs typescript
RUN pnpm install --frozen-lockfile --offline --store-dir /pnpm-store
# tsc -b, then `pnpm deploy --legacy --prod` per service into /prod/services/<name>; fails on a dev dependency
RUN node scripts/assemble-prod.mjs /prod -- --store-dir /pnpm-store

# ---- prod: the runtime image -------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS prod
# tini as PID 1: forwards SIGTERM to node and reaps zombies (Node is not written to be an init)
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
    HOST=0.0.0.0
WORKDIR /app
# Owned by root, readable by all: the service user cannot modify its own code.
COPY --from=build /prod /app
# `node` (uid 1000) ships with the official image; infra/k8s sets runAsUser 1000 to match.
USER node
EXPOSE 3000 3001 3002 3003 3013
ENTRYPOINT ["/usr/bin/tini", "--"]
# Every service (and the worker) answers GET /health/ready on its PORT; PORT is set per service.
HEALTHCHECK --interval=10s --timeout=4s --start-period=20s --retries=3 CMD ["node", "/app/healthcheck.mjs"]
CMD ["node", "--conditions=compiled", "services/gateway/dist/server.js"]
