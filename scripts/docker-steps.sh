#!/usr/bin/env bash
# Runs the Dockerfile's steps outside Docker, in a scratch directory: install with dev
# dependencies, build, prune to production dependencies, then start the built CLI with
# --help as an unprivileged user. Keep in step with the Dockerfile (a unit test checks
# that the commands below still appear there).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/okome-docker-steps-XXXXXX)
trap 'rm -rf "$work"' EXIT

cd "$repo"
# COPY package.json package-lock.json ./ ; RUN npm ci
cp package.json package-lock.json "$work/"
cd "$work"
npm ci --no-audit --no-fund --loglevel=error
# COPY tsconfig.json tsconfig.build.json ./ ; COPY src ./src
cp "$repo/tsconfig.json" "$repo/tsconfig.build.json" "$work/"
cp -r "$repo/src" "$work/src"
# RUN npm run build && npm prune --omit=dev
npm run build --silent
npm prune --omit=dev --no-audit --no-fund --loglevel=error
# The run stage: no dev dependency may remain.
for dev in typescript vitest @biomejs/biome tsx; do
  if [ -e "node_modules/$dev" ]; then echo "docker-steps: dev dependency $dev survived the prune" >&2; exit 1; fi
done
# USER node ; ENTRYPOINT ["node", "dist/cli/okome.js"] — run as an unprivileged user.
chmod -R a+rX "$work"
runner=(node dist/cli/okome.js --help)
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
  out=$(setpriv --reuid=nobody --regid=nogroup --clear-groups "${runner[@]}")
else
  out=$("${runner[@]}")
fi
printf '%s\n' "$out" | head -3
printf '%s\n' "$out" | grep -q 'okome config check' || { echo "docker-steps: --help did not print the usage" >&2; exit 1; }
# HEALTHCHECK CMD ["node", "dist/cli/okome.js", "healthcheck"]: the command exists in the build.
node dist/cli/okome.js healthcheck --help | grep -q '^Usage: okome healthcheck' \
  || { echo "docker-steps: the HEALTHCHECK's command is missing" >&2; exit 1; }
echo "docker-steps: install, build, prune and start --help: ok"
