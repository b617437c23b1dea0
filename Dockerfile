# syntax=docker/dockerfile:1
#
# One image for all four services (gateway, token, registration, connections).
# The COMMAND selects the service; every service runs the same way it does in development:
#
#   docker run IMAGE node --import tsx services/token/src/server.ts
#
# With no command the image runs the gateway. docker-compose.yml and infra/k8s/ set the command
# for each service. There is no compile step: tsx loads the TypeScript sources at start.

ARG NODE_VERSION=20
ARG PNPM_VERSION=10.34.8

# ---- deps: install the workspace from the lockfile -------------------------------------------
FROM node:${NODE_VERSION}-slim AS deps
ARG PNPM_VERSION
ENV CI=true
RUN npm install --global --no-fund --no-audit pnpm@${PNPM_VERSION}
WORKDIR /app
# `pnpm fetch` needs only the lockfile, so this layer (the package downloads) is rebuilt only when
# pnpm-lock.yaml changes, not on every source change, and no list of workspace packages is kept here.
# The store lives outside /app so that only /app (with its node_modules) reaches the prod stage.
COPY pnpm-lock.yaml pnpm-workspace.yaml ./
RUN pnpm fetch --store-dir /pnpm-store
COPY . .
# The full install, not --prod: the runtime loader tsx is a devDependency of the workspace root.
# (Once tsx is a runtime dependency, add --prod here to drop tap, typescript and playwright-core.)
RUN pnpm install --frozen-lockfile --offline --store-dir /pnpm-store

# ---- prod: the runtime image -----------------------------------------------------------------
FROM node:${NODE_VERSION}-slim AS prod
ENV HOST=0.0.0.0
WORKDIR /app
# Owned by root, readable by all: the service user cannot modify its own code.
COPY --from=deps /app /app
# `node` (uid 1000) ships with the official image; infra/k8s sets runAsUser 1000 to match.
USER node
EXPOSE 3000 3001 3002 3003
CMD ["node", "--import", "tsx", "services/gateway/src/server.ts"]
