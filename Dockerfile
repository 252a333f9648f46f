# syntax=docker/dockerfile:1
# okome-bot image: build with dev dependencies, run dist/ with production dependencies only.
# scripts/docker-steps.sh runs these same steps outside Docker (CI has no Docker engine).

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
WORKDIR /app
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
COPY --chown=node:node package.json manifest.yml ./
COPY --chown=node:node config/okome.example.yml ./config/
USER node
# A small young generation keeps RSS near 100 MB (a Pi has 1 GB). The serve command answers GET /healthz on its HTTP port (3000 by default).
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.OKOME_HTTP_PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "--max-semi-space-size=2", "dist/cli/okome.js"]
CMD ["serve"]
