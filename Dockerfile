# The kube-packet-lab image: Debian bookworm, the tools the lab drives, Node and the
# compiled project. Built by `lab docker up` (dockerode, classic builder) or by hand:
#   docker build -t kube-packet-lab .
# BASE can be any Debian bookworm image; CI passes an offline one built by
# scripts/docker-engine.sh (debootstrap + docker import) because nothing can be pulled there.
ARG BASE=node:20-bookworm-slim
FROM ${BASE}

ARG DEBIAN_FRONTEND=noninteractive
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# The lab's tools (see lab/kernel/preflight.ts), and Node when the base has none.
# Each is installed only when missing, so a base that already has them (the offline
# CI base does) builds without touching a package mirror.
RUN missing=(); \
    for pair in ip:iproute2 iptables:iptables tcpdump:tcpdump conntrack:conntrack curl:curl ps:procps nsenter:util-linux nft:nftables bird:bird2; do \
      command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}"); \
    done; \
    command -v node >/dev/null || missing+=(nodejs); \
    command -v npm >/dev/null || missing+=(npm); \
    if [ ${#missing[@]} -gt 0 ]; then \
      echo "installing: ${missing[*]}"; \
      apt-get update -q && apt-get install -y -q --no-install-recommends ca-certificates "${missing[@]}" \
      && rm -rf /var/lib/apt/lists/*; \
    fi; \
    node -e 'const [a, b] = process.versions.node.split(".").map(Number); \
      if (!(a > 18 || (a === 18 && b >= 19))) { console.error(`node ${process.version} is too old: the lab needs >= 18.19`); process.exit(1); }'; \
    echo "node $(node --version), npm $(npm --version)"

WORKDIR /opt/kube-packet-lab

# Dependencies first: this layer is reused until package*.json change. npm ci installs
# exactly what the lock file says, as the README's install does on a host.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund

COPY tsconfig.json ./
COPY lab ./lab
COPY scripts ./scripts
COPY topologies ./topologies
RUN npm run build \
    && npm prune --omit=dev --no-audit --no-fund \
    && bash scripts/install-command.sh \
    && lab --version

LABEL kube-packet-lab.image="1" \
      org.opencontainers.image.title="kube-packet-lab" \
      org.opencontainers.image.description="Kubernetes Service packet paths in Linux network namespaces"

# The lab container is long-running: `lab docker up` execs `lab up` into it.
CMD ["sleep", "infinity"]
