import { parseSave } from '../plan/kube-proxy/rules.js';
import { runIn } from './exec.js';

/** The chains of a namespace's nat table, as iptables-save lists them (built-in ones too). */
export async function natChains(ns: string): Promise<string[]> {
  const { stdout } = await runIn(ns, 'iptables-save', ['-t', 'nat']);
  return parseSave(stdout).chains.get('nat') ?? [];
}

/** Apply one ruleset payload atomically, as kube-proxy applies each sync. */
export async function restoreRules(ns: string, payload: string): Promise<void> {
  await runIn(ns, 'iptables-restore', ['--noflush'], { input: payload });
}
