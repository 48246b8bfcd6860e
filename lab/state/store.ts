import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ExitCode, LabError } from '../errors.js';
import { netnsEtcDir } from '../plan/dns.js';
import type { PodChanges } from '../plan/scale.js';
import type { NodeChanges } from '../plan/node-changes.js';
import { isLabName, NAME_MAX, namePattern } from '../topology/names.js';
import { insideRoot } from '../util/paths.js';
import { bool, dict, int, list, object, oneOf, ShapeProblem, str, text } from './shape.js';
import type { FaultPlan } from '../break/catalogue.js';

/**
 * A lab's record of what it created, in /run (tmpfs: gone at reboot, like the namespaces).
 * Written before the kernel is touched (the namespaces it intends), then updated with
 * process ids, so `down` can undo even an `up` that died halfway.
 */
export const STATE_ROOT = process.env.LAB_STATE_DIR ?? '/run/kube-packet-lab';

/** A process the lab started, as `down` finds it again: pid plus start time. */
export interface OwnedProcess {
  pid: number;
  /** /proc/<pid>/stat field 22: tells our process from a later one that reused the pid. */
  startTime: string;
}

/** A pod's workload: served by the lab's workload process (its pid), on these ports. */
export interface ProcessRecord extends OwnedProcess {
  pod: string;
  ns: string;
  ports: number[];
  /** Its sockets were closed (`lab kill`): the pod's workload is stopped, the process serves others. */
  stopped?: boolean;
}

/** The lab's one workload process, which serves every pod's sockets. */
export interface WorkloadHostRecord extends OwnedProcess {
  /** The lab namespace it was started in. */
  ns: string;
}

/** A daemon of the pod network (bgp: BIRD) in one of the lab's namespaces. */
export interface DaemonRecord extends OwnedProcess {
  host: string;
  ns: string;
  name: string;
  /** Its control socket: in its command line, which tells it from any other BIRD. */
  socket: string;
  log: string;
}

export interface LabState {
  lab: string;
  topologyPath: string;
  overrides: Record<string, string>;
  createdAt: string;
  phase: 'creating' | 'up';
  namespaces: string[];
  /** The identity (nsfs inode) of each namespace the lab made, recorded as soon as it exists. */
  namespaceIds?: Record<string, number>;
  processes: ProcessRecord[];
  /** The workload process serving the pods' sockets, once started. */
  workloadHost?: WorkloadHostRecord;
  /** The pod network's daemons (bgp: BIRD), each recorded as it starts. */
  daemons?: DaemonRecord[];
  /** Files the lab wrote outside its state folder (per-namespace resolv.conf). */
  files: string[];
  /** Pods added, removed, killed or revived since `up` (lab scale / kill / revive). */
  podChanges?: PodChanges;
  /** Nodes marked as being deleted or (un)tainted since `up` (lab node); apply keeps them. */
  nodeChanges?: NodeChanges;
  /** What kube-proxy remembers between syncs (absent: `up`'s full sync was the last one). */
  proxySync?: ProxySyncRecord;
  /** Faults `lab break` put in, each recorded before the kernel was touched: `lab repair` undoes them. */
  faults?: FaultPlan[];
}

export interface ProxySyncRecord {
  /** An endpoint change was recorded but its sync did not finish: the next sync must be full. */
  needFullSync: boolean;
  /** When stale chains were last swept (ISO time): largeClusterMode sweeps once per sync period. */
  lastSweep?: string;
  /** Which reading of the topology file the rules were last synced from (see api/running.ts). */
  topologyKey?: string;
}

const ownedProcess = { pid: int(2), startTime: str };
const processRecord = object({ ...ownedProcess, pod: str, ns: str, ports: list(int()) }, { stopped: bool });
const NAME = namePattern(NAME_MAX);
const NAMESPACE = namePattern(64);
const name = text((s) => NAME.test(s), 'is not a name the lab accepts');
/** A pod `lab scale` added, as the lab wrote it: the topology's pod after validation, every field there. */
const recordedPod = object({ name, node: name, address: str, labels: dict(str), ready: bool, workload: oneOf(['http', 'dns']) }, { terminating: bool, address6: str });
const podChanges = object(
  { added: list(recordedPod), removed: list(str), readiness: dict(bool), templates: dict(object({ labels: dict(str), workload: oneOf(['http', 'dns']) })) },
  { terminating: dict(bool) },
);

/** A fault `lab break` recorded: its commands run only inside the lab's namespaces (checked in checkState). */
function faultPlan() {
  const command = object({ host: name, argv: list(str) }, { input: str, mayFail: bool });
  return object({ fault: str, summary: str, breakSteps: list(command), repairSteps: list(command), healthy: object({ host: name, argv: list(str), pattern: str }, { absent: bool }) }, { probes: list(object({ from: name, to: str, what: str })) });
}

/**
 * The state is read back with this check: it is ours, but it lives in a file someone may edit
 * or a full disk may cut short. Everything `down` deletes is checked here to be the lab's own:
 * its namespaces start with "<lab>-", its files are the /etc/netns folders of those namespaces.
 */
const stateShape = object(
  {
    lab: text(isLabName, 'is not a lab name'),
    topologyPath: str,
    overrides: dict(str),
    createdAt: str,
    phase: oneOf(['creating', 'up']),
    namespaces: list(text((s) => NAMESPACE.test(s), 'is not a namespace name the lab makes')),
    processes: list(processRecord),
    files: list(str),
  },
  {
    namespaceIds: dict(int()),
    workloadHost: object({ ...ownedProcess, ns: str }),
    daemons: list(object({ ...ownedProcess, host: name, ns: str, name, socket: str, log: str })),
    podChanges,
    nodeChanges: dict(object({}, { deleting: bool, taints: list(object({ key: str, effect: oneOf(['NoSchedule', 'PreferNoSchedule', 'NoExecute']) }, { value: str })) })),
    proxySync: object({ needFullSync: bool }, { lastSweep: str, topologyKey: str }),
    faults: list(faultPlan()),
  },
);

/** The state, checked: its shape, then what it says it owns. */
function checkState(data: unknown): LabState {
  stateShape(data, []);
  const s = data as LabState;
  s.namespaces.forEach((ns, i) => {
    if (!ns.startsWith(`${s.lab}-`)) throw new ShapeProblem(['namespaces', i], `${ns} is not named like a namespace of lab ${s.lab}`);
  });
  for (const ns of Object.keys(s.namespaceIds ?? {})) {
    if (!s.namespaces.includes(ns)) throw new ShapeProblem(['namespaceIds', ns], `${ns} is not one of the lab's namespaces`);
  }
  (s.daemons ?? []).forEach((d, i) => {
    if (!s.namespaces.includes(d.ns)) throw new ShapeProblem(['daemons', i, 'ns'], `${d.ns} is not one of the lab's namespaces`);
  });
  s.files.forEach((f, i) => {
    if (!s.namespaces.some((ns) => f === netnsEtcDir(ns))) throw new ShapeProblem(['files', i], `${f} is not the /etc/netns folder of one of the lab's namespaces`);
  });
  // Written before these fields existed: their defaults.
  if (s.podChanges) {
    s.podChanges.terminating ??= {};
    for (const p of s.podChanges.added) p.terminating ??= false;
  }
  return s;
}

export const labDir = (lab: string) => {
  const dir = join(STATE_ROOT, lab);
  // Every path built from a lab name stays inside the state root (the name is checked anyway).
  if (!isLabName(lab) || !insideRoot(STATE_ROOT, dir)) throw new LabError(`"${lab}" is not a lab name`, ExitCode.badInput);
  return dir;
};
export const stateFile = (lab: string) => join(labDir(lab), 'state.json');
export const labExists = (lab: string) => existsSync(labDir(lab));

/** The lab's state; undefined when it has none; exit 5 naming the file and the way out when it is damaged. */
export function readState(lab: string): LabState | undefined {
  const r = inspectState(lab);
  if (r.problem) throw new LabError(r.problem, ExitCode.labState, { file: stateFile(lab) });
  return r.state;
}

/** The state, or why it cannot be used (for `down`, which then works from the namespaces' markers). */
export function inspectState(lab: string): { state?: LabState; problem?: string } {
  const file = stateFile(lab);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return {};
    return { problem: `cannot read ${file} (${code})` };
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    return { problem: damaged(lab, file, `not JSON (${(err as Error).message})`) };
  }
  let state: LabState;
  try {
    state = checkState(data);
  } catch (err) {
    if (!(err instanceof ShapeProblem)) throw err;
    return { problem: damaged(lab, file, `${err.path.join('.') || 'state'}: ${err.message}`) };
  }
  if (state.lab !== lab) return { problem: damaged(lab, file, `it names lab "${state.lab}"`) };
  return { state };
}

const damaged = (lab: string, file: string, why: string) =>
  `the state file ${file} of lab ${lab} is damaged (${why}): run "lab down ${lab}", which removes the lab from its namespaces' ownership markers`;

/** Every process this state says the lab started: the workload process, each pod's record, the daemons. */
export function recordedProcesses(state: LabState): OwnedProcess[] {
  return [...(state.workloadHost ? [state.workloadHost] : []), ...state.processes, ...(state.daemons ?? [])];
}

/**
 * The one writer of a lab's state: every change goes through a method here, which saves it at
 * once (atomically), so what the kernel holds is recorded before or as it is created.
 */
export class LabStore {
  /**
   * Whether the rules may lag the recorded pods, as the state said when this command opened it
   * (kube-proxy's needFullSync): a change recorded by an earlier command that died before its
   * sync finished. Read once here, because this command's own change sets the flag again.
   */
  readonly needFullSync: boolean;

  /** The reading of the topology file this command works from (a change's sync records it). */
  topologyKey: string | undefined;

  /**
   * `topologyKey`: the reading of the topology file this command works from. When the rules
   * were synced from another (the file was edited since), the next sync is full too: the
   * Services it describes may not be the ones the rules were written for.
   */
  constructor(
    readonly state: LabState,
    opts: { topologyKey?: string } = {},
  ) {
    this.topologyKey = opts.topologyKey;
    const otherFile = opts.topologyKey !== undefined && opts.topologyKey !== state.proxySync?.topologyKey;
    this.needFullSync = otherFile || state.proxySync?.needFullSync === true;
  }

  /** Record a new lab's intent before anything exists. */
  static create(state: LabState): LabStore {
    writeState(state);
    return new LabStore(state);
  }

  get lab(): string {
    return this.state.lab;
  }

  /** Namespaces and files about to be created: recorded first, so a crash leaves nothing `down` misses. */
  addResources(namespaces: string[], files: string[]): void {
    this.state.namespaces.push(...namespaces.filter((n) => !this.state.namespaces.includes(n)));
    this.state.files.push(...files.filter((f) => !this.state.files.includes(f)));
    this.save();
  }

  /** Namespaces that now exist because this lab made them: their identities, so `down` knows them before they carry the marker. */
  recordNamespaceIds(ids: Map<string, number>): void {
    if (ids.size === 0) return;
    this.state.namespaceIds = { ...this.state.namespaceIds, ...Object.fromEntries(ids) };
    this.save();
  }

  /** Claims that came to nothing: the names stay recorded, but as nobody's the lab made. */
  dropNamespaceIds(names: string[]): void {
    if (!this.state.namespaceIds || names.length === 0) return;
    for (const ns of names) delete this.state.namespaceIds[ns];
    this.save();
  }

  setWorkloadHost(host: WorkloadHostRecord): void {
    this.state.workloadHost = host;
    this.save();
  }

  /** A daemon just started (recorded before the command waits for anything). */
  recordDaemon(d: DaemonRecord): void {
    this.state.daemons = [...(this.state.daemons ?? []).filter((x) => x.host !== d.host || x.name !== d.name), d];
    this.save();
  }

  /** Pods now served (replacing any older record of the same pod). */
  recordWorkloads(records: ProcessRecord[]): void {
    const pods = new Set(records.map((r) => r.pod));
    this.state.processes = [...this.state.processes.filter((p) => !pods.has(p.pod)), ...records];
    this.save();
  }

  markStopped(pod: string): void {
    this.state.processes = this.state.processes.map((p) => (p.pod === pod ? { ...p, stopped: true } : p));
    this.save();
  }

  /** Pods deleted: their records, namespaces and files. */
  forgetPods(pods: string[], namespaces: string[], files: string[]): void {
    this.state.namespaces = this.state.namespaces.filter((ns) => !namespaces.includes(ns));
    if (this.state.namespaceIds) for (const ns of namespaces) delete this.state.namespaceIds[ns];
    this.state.processes = this.state.processes.filter((p) => !pods.includes(p.pod));
    this.state.files = this.state.files.filter((f) => !files.includes(f));
    this.save();
  }

  /** Pods changed: recorded with needFullSync set, cleared by recordProxySync once every node is synced. */
  setPodChanges(changes: PodChanges): void {
    this.state.podChanges = changes;
    this.state.proxySync = { ...this.state.proxySync, needFullSync: true };
    this.save();
  }

  /** A Node changed (lab node): recorded; kube-proxy's rules do not depend on it, so no sync is owed. */
  setNodeChanges(changes: NodeChanges): void {
    this.state.nodeChanges = changes;
    this.save();
  }

  /**
   * `lab apply`: the lab now runs from this file as it stands (no overrides, no run-time pod
   * changes), read as `topologyKey`; needFullSync until its sync finishes, as for a pod change.
   */
  switchTopology(path: string, topologyKey: string | undefined): void {
    this.state.topologyPath = path;
    this.state.overrides = {};
    delete this.state.podChanges;
    this.topologyKey = topologyKey;
    this.state.proxySync = { ...this.state.proxySync, needFullSync: true };
    this.save();
  }

  /** Every node's rules now match the recorded pods; `swept`: stale chains were swept just now. */
  recordProxySync(swept: boolean): void {
    this.state.proxySync = {
      needFullSync: false,
      lastSweep: swept ? new Date().toISOString() : this.state.proxySync?.lastSweep,
      topologyKey: this.topologyKey ?? this.state.proxySync?.topologyKey,
    };
    this.save();
  }

  /** A fault about to be put in (recorded first, so `lab repair` finds it even after a crash). */
  recordFault(plan: FaultPlan): void {
    this.state.faults = [...(this.state.faults ?? []).filter((f) => f.fault !== plan.fault), plan];
    this.save();
  }

  /** A fault undone. */
  forgetFault(fault: string): void {
    this.state.faults = (this.state.faults ?? []).filter((f) => f.fault !== fault);
    if (this.state.faults.length === 0) delete this.state.faults;
    this.save();
  }

  /** `topologyKey`: the reading of the topology file the lab was built from. */
  markUp(topologyKey?: string): void {
    this.state.phase = 'up';
    // `up` wrote every node's first (full) sync on empty tables: nothing stale, as of now.
    this.state.proxySync = { needFullSync: false, lastSweep: new Date().toISOString(), ...(topologyKey ? { topologyKey } : {}) };
    this.save();
  }

  save(): void {
    writeState(this.state);
  }
}

function writeState(state: LabState): void {
  mkdirSync(labDir(state.lab), { recursive: true });
  // A private temporary name: two writers never rename each other's file away.
  const tmp = `${stateFile(state.lab)}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(tmp, stateFile(state.lab));
}

export function removeState(lab: string): void {
  rmSync(labDir(lab), { recursive: true, force: true });
}

/** Lab names with a folder in the state root (valid names only: a stray folder is not a lab). */
export function labFolders(): string[] {
  try {
    return readdirSync(STATE_ROOT, { withFileTypes: true })
      .filter((d) => d.isDirectory() && isLabName(d.name))
      .map((d) => d.name);
  } catch {
    return [];
  }
}

/** Every lab with a usable state file (damaged ones are skipped: `lab status <lab>` names them). */
export function listStates(): LabState[] {
  return labFolders()
    .map((lab) => inspectState(lab).state)
    .filter((s): s is LabState => s !== undefined);
}
