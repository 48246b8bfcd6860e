/**
 * When the image build fails because its base image could not be had (no registry reachable,
 * or a tag that does not exist), say so and give the ways out. Pure.
 */

/** The Dockerfile's own BASE default, pulled from a registry. */
export const DEFAULT_BASE = 'node:20-bookworm-slim';

const PULL_FAILURE = /pull access denied|manifest (for .* )?(unknown|not found)|repository does not exist|no such host|dial tcp|connection refused|i\/o timeout|TLS handshake timeout|Client\.Timeout|failed to resolve|temporary failure in name resolution|network is unreachable|No such image/i;

/** The advice to add to a failed build's message, or undefined when the failure is not about the base. */
export function missingBaseAdvice(base: string | undefined, failure: string): string | undefined {
  if (!PULL_FAILURE.test(failure)) return undefined;
  const used = base ?? DEFAULT_BASE;
  return [
    `the base image ${used} is not in this Docker engine and could not be pulled${base ? '' : ` (it is the Dockerfile's default, from Docker Hub)`}. Either:`,
    `  - name a Debian bookworm image the engine has: LAB_DOCKER_BASE=<image> lab docker up <scenario> (or --base <image>); "docker images" lists them`,
    `  - or build the offline base as CI does, from a Debian mirror, no registry needed: sudo bash scripts/docker-engine.sh, then LAB_DOCKER_BASE=kube-packet-lab-base:bookworm lab docker up <scenario>`,
  ].join('\n');
}
