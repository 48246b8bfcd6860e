import { execaSync } from 'execa';

/**
 * Integration tests run the CLI as users do: build it once (tsc, then the bundles and the
 * prevalidated scenarios, `npm run build`), so they never test a stale dist/.
 */
export default function setup(): void {
  execaSync('npm', ['run', '-s', 'build'], { stdio: 'inherit' });
}
