import { describe, expect, it } from 'vitest';
import { missingBaseAdvice } from '../../lab/docker/base-image.js';

describe('a missing base image is explained with the way out', () => {
  it('names LAB_DOCKER_BASE and the offline base CI builds, for the pull failures Docker reports', () => {
    const offline = 'building image kube-packet-lab failed: Get "https://registry-1.docker.io/v2/": dial tcp: lookup registry-1.docker.io on 127.0.0.53:53: no such host';
    const advice = missingBaseAdvice(undefined, offline)!;
    expect(advice).toContain("the base image node:20-bookworm-slim is not in this Docker engine and could not be pulled (it is the Dockerfile's default");
    expect(advice).toContain('LAB_DOCKER_BASE=<image> lab docker up <scenario>');
    expect(advice).toContain('sudo bash scripts/docker-engine.sh, then LAB_DOCKER_BASE=kube-packet-lab-base:bookworm');
    const denied = "building image x failed: pull access denied for mine, repository does not exist or may require 'docker login'";
    expect(missingBaseAdvice('mine:1', denied)).toMatch(/^the base image mine:1 is not in this Docker engine and could not be pulled\. Either:/);
  });

  it('says nothing for a build that failed for another reason', () => {
    expect(missingBaseAdvice(undefined, "building image x failed: The command '/bin/sh -c npm run build' returned a non-zero code: 2")).toBeUndefined();
  });
});
