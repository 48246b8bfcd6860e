/**
 * `lab up` starts its workload process before it reads the topology, and stops it if it never
 * places it (lab/kernel/workloads.ts says how). The CLI calls these before and after the verb.
 */
export { discardUnplacedHost, prestartWorkloadHost } from '../kernel/workloads.js';
