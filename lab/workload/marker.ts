/** The argument every lab workload carries, so `down` can tell its own processes from any other. */
export const WORKLOAD_MARKER = '--kube-packet-lab-workload';
