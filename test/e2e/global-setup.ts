import { execaSync } from 'execa';

/** Integration tests run the compiled CLI: compile once, so they never test a stale dist/. */
export default function setup(): void {
  execaSync('npx', ['tsc', '-p', '.'], { stdio: 'inherit' });
}
