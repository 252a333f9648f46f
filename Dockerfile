# syntax=docker/dockerfile:1
# okome-bot image: build with dev dependencies, run dist/ with production dependencies only.
# scripts/docker-steps.sh runs these same steps outside Docker (CI has no Docker engine).
# For the Pis (arm64) and a PC at once, with buildx:
#   docker buildx build --platform linux/amd64,linux/arm64 -t okome-bot .

# The Node version is .node-version's (a unit test keeps them equal). trixie: Debian's current
# stable, supported past Node 26's end of life (April 2029); bookworm's LTS ends June 2028.
FROM node:26.12.1-trixie-slim AS build
WORKDIR /app
# ssh2's optional crypto addons (sshcrypto, cpu-features) compile here against this image's
# Node; better-sqlite3 13 ships prebuilt Node-API binaries (linux x64 and arm64).
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ \
    && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:26.12.1-trixie-slim AS run
ENV NODE_ENV=production
# Mount the configuration here (and the SSH key it names, e.g. /etc/okome/id_ed25519, mode 0600).
ENV OKOME_CONFIG=/etc/okome/okome.yml
WORKDIR /app
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
COPY --chown=node:node package.json manifest.yml ./
COPY --chown=node:node config/okome.example.yml config/okome.schema.json ./config/
# The store (store.path: /var/lib/okome-bot/okome.db, as in the example) lives on a volume the
# node user owns: a fresh named volume takes this directory's owner.
RUN mkdir -p /var/lib/okome-bot /etc/okome && chown node:node /var/lib/okome-bot
VOLUME /var/lib/okome-bot
USER node
# http.port: Slack's requests in HTTP mode, /healthz, the Alertmanager and keepalived webhooks.
EXPOSE 3000
# Asks /healthz where the configuration says the bot listens (http.port, http.host).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "dist/cli/okome.js", "healthcheck"]
# A small young generation keeps RSS near 100 MB (a Pi has 1 GB).
ENTRYPOINT ["node", "--max-semi-space-size=2", "dist/cli/okome.js"]
CMD ["serve"]
